package middleware_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/golang-jwt/jwt/v5"
	"github.com/gorilla/sessions"
	"github.com/gorilla/websocket"

	"ginws.dev/ginws"
	"ginws.dev/middleware"
)

// exampleGreeter greets the user the middleware found for its connection.
type exampleGreeter struct{ ginws.WebsocketConsumer }

func (g *exampleGreeter) Connect(ctx context.Context) error {
	if err := g.Accept(); err != nil {
		return err
	}
	user, _ := middleware.UserFrom[string](g.Scope()) // RequireUser ran: there is one
	return g.SendText("hello, " + user)
}

// Channels' AuthMiddlewareStack on a Gin route: the session an ordinary HTTP view wrote, the user
// it names, and HTTP 403 for an anonymous handshake, before any upgrade.
func Example() {
	store := sessions.NewCookieStore([]byte("example key, 32 bytes or longer."))
	findUser := func(_ context.Context, id any) (string, bool, error) {
		name, ok := id.(string) // a real app looks the ID up in its database
		return name, ok && name != "", nil
	}
	ws := ginws.New(ginws.Config{Logger: slog.New(slog.DiscardHandler)})
	r := gin.New()
	r.Use(middleware.Sessions(store, "session")) // the HTTP views see the session too
	r.POST("/login", func(c *gin.Context) {
		s, _ := middleware.SessionFromGin(c)
		s.Values["user_id"] = c.PostForm("username")
		if err := s.Save(c.Request, c.Writer); err != nil {
			c.Status(http.StatusInternalServerError)
		}
	})
	r.GET("/ws/hello/",
		middleware.LoadUser(middleware.SessionUser("user_id", findUser)),
		middleware.RequireUser(),
		ws.Mount(func() ginws.Consumer { return new(exampleGreeter) }))
	srv := httptest.NewServer(r)
	defer srv.Close()
	defer ws.Shutdown(context.Background())
	socket := "ws" + strings.TrimPrefix(srv.URL, "http") + "/ws/hello/"

	jar, _ := cookiejar.New(nil)
	_, resp, err := (&websocket.Dialer{Jar: jar}).Dial(socket, nil)
	if resp == nil {
		fmt.Println(err)
		return
	}
	fmt.Println("anonymous handshake:", resp.Status)

	browser := &http.Client{Jar: jar}
	resp, err = browser.PostForm(srv.URL+"/login", url.Values{"username": {"ada"}})
	if err != nil {
		fmt.Println(err)
		return
	}
	resp.Body.Close()
	conn, _, err := (&websocket.Dialer{Jar: jar}).Dial(socket, nil) // the jar sends the cookie
	if err != nil {
		fmt.Println(err)
		return
	}
	defer conn.Close()
	_, greeting, _ := conn.ReadMessage()
	fmt.Println("signed in:", string(greeting))
	// Output:
	// anonymous handshake: 403 Forbidden
	// signed in: hello, ada
}

// exampleSubject is the user of a verified token: its "sub" claim.
func exampleSubject(_ context.Context, claims jwt.MapClaims) (string, bool, error) {
	sub, err := claims.GetSubject()
	return sub, err == nil && sub != "", err
}

// JWT refuses a handshake without a valid token with 401 and a WWW-Authenticate header, before
// any upgrade; the reason is named, the token never is. ClaimsUser makes the token's subject the
// connection's user.
func ExampleJWT() {
	secret := []byte("example secret, 32 bytes or more")
	ws := ginws.New(ginws.Config{Logger: slog.New(slog.DiscardHandler)})
	r := gin.New()
	r.GET("/ws/notifications", middleware.JWT(middleware.JWTConfig{
		Algorithms: []string{"HS256"},
		Key:        secret,
		Audience:   "notifications",
		Logger:     slog.New(slog.DiscardHandler),
	}), middleware.LoadUser(middleware.ClaimsUser(exampleSubject)), middleware.RequireUser(),
		ws.Mount(func() ginws.Consumer { return new(exampleGreeter) }))
	srv := httptest.NewServer(r)
	defer srv.Close()
	defer ws.Shutdown(context.Background())

	token := func(audience string, expiresIn time.Duration) string {
		claims := jwt.MapClaims{"sub": "ada", "aud": audience, "exp": time.Now().Add(expiresIn).Unix()}
		s, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(secret)
		return s
	}
	socket := "ws" + strings.TrimPrefix(srv.URL, "http") + "/ws/notifications"
	for _, try := range []struct{ name, authorization string }{
		{"no token", ""},
		{"expired", "Bearer " + token("notifications", -time.Hour)},
		{"for another audience", "Bearer " + token("billing", time.Hour)},
		{"valid", "Bearer " + token("notifications", time.Hour)},
	} {
		h := http.Header{}
		if try.authorization != "" {
			h.Set("Authorization", try.authorization)
		}
		conn, resp, err := websocket.DefaultDialer.Dial(socket, h)
		if resp == nil {
			fmt.Println(err)
			return
		}
		if err != nil {
			fmt.Printf("%s: %s; WWW-Authenticate: %s\n", try.name, resp.Status, resp.Header.Get("WWW-Authenticate"))
			continue
		}
		_, greeting, _ := conn.ReadMessage()
		fmt.Printf("%s: %s\n", try.name, greeting)
		conn.Close()
	}
	// Output:
	// no token: 401 Unauthorized; WWW-Authenticate: Bearer realm="ginws"
	// expired: 401 Unauthorized; WWW-Authenticate: Bearer realm="ginws", error="invalid_token", error_description="token expired"
	// for another audience: 401 Unauthorized; WWW-Authenticate: Bearer realm="ginws", error="invalid_token", error_description="wrong audience"
	// valid: hello, ada
}

// Django's ALLOWED_HOSTS for a Gin app: a handshake (or any request) naming another host is
// refused with 400 before the upgrade, even when its Origin agrees with its Host.
func ExampleAllowedHosts() {
	ws := ginws.New(ginws.Config{Logger: slog.New(slog.DiscardHandler)})
	r := gin.New()
	r.Use(middleware.AllowedHosts("127.0.0.1", ".chat.example"))
	r.GET("/ws/hello/", ws.Mount(func() ginws.Consumer { return new(exampleGreeter) }))
	srv := httptest.NewServer(r)
	defer srv.Close()
	defer ws.Shutdown(context.Background())

	header := http.Header{"Host": {"evil.example"}, "Origin": {"http://evil.example"}}
	_, resp, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(srv.URL, "http")+"/ws/hello/", header)
	if resp != nil {
		resp.Body.Close()
	}
	fmt.Println(err != nil, resp.StatusCode)
	// Output: true 400
}
