package middleware_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/gorilla/securecookie"
	"github.com/gorilla/sessions"

	"ginws.dev/ginws"
	"ginws.dev/ginws/wstest"
	"ginws.dev/middleware"
)

type account struct{ Name string }

func findAccount(ctx context.Context, id any) (*account, bool, error) {
	name, ok := id.(string)
	if !ok || name == "" {
		return nil, false, nil
	}
	if name == "db-down" {
		return nil, false, errors.New("database unreachable")
	}
	return &account{Name: name}, true, nil
}

// sessionApp is a small app: HTTP views that sign in and read/write the session, and a socket that
// reads the same session: its consumer greets the client with the user and the session's color,
// and hands every message to receive.
func sessionApp(t *testing.T, store sessions.Store, receive func(ctx context.Context, c *sessionConsumer, in map[string]string) error) (*harness, *wstest.Server) {
	h := newHarness(t)
	r := h.engine
	r.Use(middleware.Sessions(store, "sessionid"))
	r.POST("/login", func(c *gin.Context) {
		s, _ := middleware.SessionFromGin(c)
		s.Values["user_id"] = c.PostForm("username")
		s.Values["color"] = "blue"
		if err := s.Session.Save(c.Request, c.Writer); err != nil {
			c.String(http.StatusInternalServerError, err.Error())
			return
		}
		c.Status(http.StatusNoContent)
	})
	r.GET("/color", func(c *gin.Context) {
		s, _ := middleware.SessionFromGin(c)
		v, _ := s.Values["color"].(string)
		c.String(http.StatusOK, v)
	})
	r.GET("/ws",
		middleware.LoadUser(middleware.SessionUser("user_id", findAccount)),
		middleware.RequireUser(),
		h.ws.Mount(func() ginws.Consumer { return &sessionConsumer{connects: &h.connects, receive: receive} }))
	return h, h.start(t)
}

// sessionConsumer greets the client with the user, the session's color and whether the request is
// authenticated, then hands every message to receive.
type sessionConsumer struct {
	ginws.JSONConsumer[map[string]string]
	connects interface{ Add(int32) int32 }
	receive  func(ctx context.Context, c *sessionConsumer, in map[string]string) error
}

func (s *sessionConsumer) Connect(ctx context.Context) error {
	s.connects.Add(1)
	u, ok := middleware.UserFrom[*account](s.Scope())
	if !ok {
		return errors.New("RequireUser let an anonymous request through")
	}
	sess, _ := middleware.SessionFrom(s.Scope())
	if err := s.Accept(); err != nil {
		return err
	}
	return s.SendJSON(map[string]any{"user": u.Name, "color": sess.Values["color"], "authenticated": middleware.IsAuthenticated(s.Scope())})
}

func (s *sessionConsumer) ReceiveJSON(ctx context.Context, in map[string]string) error {
	if s.receive == nil {
		return nil
	}
	return s.receive(ctx, s, in)
}

// persistColor sets the session's color to the message's and saves the session, telling the
// client whether that worked.
func persistColor(ctx context.Context, c *sessionConsumer, in map[string]string) error {
	sess, _ := middleware.SessionFrom(c.Scope())
	sess.Values["color"] = in["color"]
	err := sess.Persist(ctx)
	return c.SendJSON(map[string]any{"saved": err == nil, "notSavable": errors.Is(err, middleware.ErrSessionNotSavable)})
}

func login(t *testing.T, ts *wstest.Server, name string) *http.Client {
	t.Helper()
	browser := ts.Browser()
	resp, err := browser.PostForm(ts.URL+"/login", url.Values{"username": {name}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("login: %d", resp.StatusCode)
	}
	return browser
}

func getColor(t *testing.T, browser *http.Client, ts *wstest.Server) string {
	t.Helper()
	resp, err := browser.Get(ts.URL + "/color")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestSessionSharedWithHTTPViews(t *testing.T) {
	t.Parallel()
	store := sessions.NewFilesystemStore(t.TempDir(), securecookie.GenerateRandomKey(32))
	// The consumer saves the color it is sent; sent no color, it reloads the session and sends
	// back the color there.
	h, ts := sessionApp(t, store, func(ctx context.Context, c *sessionConsumer, in map[string]string) error {
		if in["color"] != "" {
			return persistColor(ctx, c, in)
		}
		sess, _ := middleware.SessionFrom(c.Scope())
		if err := sess.Reload(ctx); err != nil {
			return err
		}
		return c.SendJSON(map[string]any{"color": sess.Values["color"]})
	})
	ctx := ctxT(t)
	browser := login(t, ts, "ada")

	// The HTTP view wrote the session; the consumer reads it.
	comm := ts.Communicator("/ws", wstest.Jar(browser.Jar))
	seen, _ := h.accepted(t, comm)
	if seen["user"] != "ada" || seen["color"] != "blue" || seen["authenticated"] != true {
		t.Fatalf("consumer saw %v", seen)
	}
	// The consumer writes the session; the next HTTP request sees it.
	if err := comm.SendJSON(ctx, map[string]string{"color": "green"}); err != nil {
		t.Fatal(err)
	}
	var res map[string]bool
	if err := comm.ReceiveJSON(ctx, &res); err != nil || !res["saved"] {
		t.Fatalf("save from the consumer: %v %v", res, err)
	}
	if got := getColor(t, browser, ts); got != "green" {
		t.Fatalf("HTTP view after the consumer saved: %q, want green", got)
	}
	// An HTTP write after the handshake is visible after Reload.
	resp, err := browser.PostForm(ts.URL+"/login", url.Values{"username": {"ada"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if err := comm.SendJSON(ctx, map[string]string{}); err != nil {
		t.Fatal(err)
	}
	var reloaded map[string]string
	if err := comm.ReceiveJSON(ctx, &reloaded); err != nil || reloaded["color"] != "blue" {
		t.Fatalf("after Reload: %v %v", reloaded, err)
	}
}

func TestCookieStoreCannotSaveAfterUpgrade(t *testing.T) {
	t.Parallel()
	store := sessions.NewCookieStore(securecookie.GenerateRandomKey(32))
	h, ts := sessionApp(t, store, persistColor)
	ctx := ctxT(t)
	browser := login(t, ts, "ada")
	comm := ts.Communicator("/ws", wstest.Jar(browser.Jar))
	seen, _ := h.accepted(t, comm)
	if seen["user"] != "ada" {
		t.Fatalf("consumer saw %v", seen)
	}
	if err := comm.SendJSON(ctx, map[string]string{"color": "red"}); err != nil {
		t.Fatal(err)
	}
	var res map[string]bool
	if err := comm.ReceiveJSON(ctx, &res); err != nil || res["saved"] || !res["notSavable"] {
		t.Fatalf("saving a cookie session after the upgrade must fail with ErrSessionNotSavable: %v %v", res, err)
	}
	if got := getColor(t, browser, ts); got != "blue" {
		t.Fatalf("the cookie session changed: %q", got)
	}
}

func TestAnonymousTamperedAndExpiredSessionsAreRefused(t *testing.T) {
	t.Parallel()
	key := securecookie.GenerateRandomKey(32)
	store := sessions.NewCookieStore(key)
	h, ts := sessionApp(t, store, nil)

	// No cookie at all.
	h.refused(t, ts.Communicator("/ws"), http.StatusForbidden)

	// A valid cookie, then tampered with.
	browser := login(t, ts, "ada")
	u, _ := url.Parse(ts.URL)
	cookies := browser.Jar.Cookies(u)
	if len(cookies) != 1 {
		t.Fatalf("cookies: %v", cookies)
	}
	tampered := cookies[0].Value[:len(cookies[0].Value)-4] + "AAAA"
	h.refused(t, ts.Communicator("/ws", wstest.Header("Cookie", "sessionid="+tampered)), http.StatusForbidden)
	h.refused(t, ts.Communicator("/ws", wstest.Header("Cookie", "sessionid=%%%not-base64")), http.StatusForbidden)

	// A cookie signed with the right key but past its max age.
	old := securecookie.New(key, nil).MaxAge(1)
	old.SetSerializer(securecookie.GobEncoder{})
	expired, err := old.Encode("sessionid", map[any]any{"user_id": "ada"})
	if err != nil {
		t.Fatal(err)
	}
	h.accepted(t, ts.Communicator("/ws", wstest.Header("Cookie", "sessionid="+expired)))
	time.Sleep(2100 * time.Millisecond)
	store.MaxAge(1)
	h.refused(t, ts.Communicator("/ws", wstest.Header("Cookie", "sessionid="+expired)), http.StatusForbidden)
}

func TestLoaderFailureIs500(t *testing.T) {
	t.Parallel()
	store := sessions.NewCookieStore(securecookie.GenerateRandomKey(32))
	h, ts := sessionApp(t, store, nil)
	browser := login(t, ts, "db-down")
	h.refused(t, ts.Communicator("/ws", wstest.Jar(browser.Jar)), http.StatusInternalServerError)
}

func TestRequireUserStatusAndConsumerRefusal(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.engine.GET("/api", middleware.LoadUser(func(c *gin.Context) (string, bool, error) {
		u := c.Query("as")
		return u, u != "", nil
	}), middleware.RequireUserStatus(http.StatusUnauthorized), h.mount(func(p *probe) map[string]any {
		u, _ := middleware.UserFrom[string](p.Scope())
		return map[string]any{"user": u}
	}))
	// The consumer itself may refuse too, in Connect (403 as well).
	h.engine.GET("/admins", middleware.LoadUser(func(c *gin.Context) (string, bool, error) {
		u := c.Query("as")
		return u, u != "", nil
	}), middleware.RequireUser(), h.ws.Mount(func() ginws.Consumer { return &adminOnly{} }))
	ts := h.start(t)
	h.refused(t, ts.Communicator("/api"), http.StatusUnauthorized)
	seen, _ := h.accepted(t, ts.Communicator("/api?as=bob"))
	if seen["user"] != "bob" {
		t.Fatalf("seen %v", seen)
	}
	res, err := ts.Communicator("/admins?as=bob").Connect(ctxT(t))
	if err != nil || res.Accepted || res.Status != http.StatusForbidden {
		t.Fatalf("consumer refusal: %+v %v", res, err)
	}
	res, err = ts.Communicator("/admins?as=root").Connect(ctxT(t))
	if err != nil || !res.Accepted {
		t.Fatalf("admin: %+v %v", res, err)
	}
}

type adminOnly struct{ ginws.WebsocketConsumer }

func (a *adminOnly) Connect(ctx context.Context) error {
	if u, _ := middleware.UserFrom[string](a.Scope()); u != "root" {
		return nil // not accepted: 403
	}
	return a.Accept()
}
