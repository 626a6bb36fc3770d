package middleware_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	ginjwt "github.com/appleboy/gin-jwt/v2"
	"github.com/gin-gonic/gin"
	"github.com/golang-jwt/jwt/v5"
	"github.com/gorilla/securecookie"

	"ginws.dev/ginws"
	"ginws.dev/ginws/wstest"
)

// What appleboy/gin-jwt leaves in the gin context, typed for consumers: its claims under
// "JWT_PAYLOAD" (as ginjwt.MapClaims) and the identity its IdentityHandler returns under
// IdentityKey.
var (
	ginJWTClaims   = ginws.NewKey[ginjwt.MapClaims]("JWT_PAYLOAD")
	ginJWTIdentity = ginws.NewKey[*account]("id")
)

// An app's existing gin-jwt middleware on the socket route, unchanged: its claims and identity
// reach Connect through typed keys, and its 401 answers the handshake before any upgrade.
func TestGinJWT(t *testing.T) {
	secret := securecookie.GenerateRandomKey(32)
	auth, err := ginjwt.New(&ginjwt.GinJWTMiddleware{
		Realm:       "chat",
		Key:         secret,
		Timeout:     time.Hour,
		IdentityKey: ginJWTIdentity.Name(),
		Authenticator: func(c *gin.Context) (any, error) {
			var in struct{ Username, Password string }
			if err := c.ShouldBindJSON(&in); err != nil || in.Password != "letmein" {
				return nil, ginjwt.ErrFailedAuthentication
			}
			return &account{Name: in.Username}, nil
		},
		PayloadFunc: func(data any) ginjwt.MapClaims {
			a, _ := data.(*account)
			return ginjwt.MapClaims{"id": a.Name, "role": "editor"}
		},
		IdentityHandler: func(c *gin.Context) any {
			name, _ := ginjwt.ExtractClaims(c)["id"].(string)
			return &account{Name: name}
		},
		TokenLookup: "header: Authorization, cookie: jwt", // a browser's socket sends the cookie
		SendCookie:  true,
	})
	if err != nil {
		t.Fatal(err)
	}
	h := newHarness(t)
	h.engine.POST("/login", auth.LoginHandler)
	h.engine.GET("/ws", auth.MiddlewareFunc(), h.mount(func(p *probe) map[string]any {
		claims, _ := ginJWTClaims.Get(p.Scope())
		who, ok := ginJWTIdentity.Get(p.Scope())
		if !ok {
			return map[string]any{"error": "no identity"}
		}
		return map[string]any{"user": who.Name, "role": claims["role"], "sub": claims["id"]}
	}))
	ts := h.start(t)

	// Refusals: gin-jwt's own 401 (with its WWW-Authenticate), before the upgrade and before
	// the consumer runs.
	forged := func(key []byte, exp time.Time) string {
		s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"id": "mallory", "exp": exp.Unix()}).SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	for name, authz := range map[string]string{
		"no token":          "",
		"another key":       "Bearer " + forged(securecookie.GenerateRandomKey(32), time.Now().Add(time.Hour)),
		"expired":           "Bearer " + forged(secret, time.Now().Add(-time.Minute)),
		"not a bearer form": "Basic " + forged(secret, time.Now().Add(time.Hour)),
	} {
		var opts []wstest.Option
		if authz != "" {
			opts = append(opts, wstest.Header("Authorization", authz))
		}
		comm := ts.Communicator("/ws", opts...)
		before := h.connects.Load()
		res, err := comm.Connect(ctxT(t))
		if err != nil {
			t.Fatal(err)
		}
		if res.Accepted || res.Status != http.StatusUnauthorized || res.Header.Get("WWW-Authenticate") != "JWT realm=chat" {
			t.Errorf("%s: accepted=%v status=%d WWW-Authenticate=%q, want gin-jwt's 401", name, res.Accepted, res.Status, res.Header.Get("WWW-Authenticate"))
		}
		if h.connects.Load() != before {
			t.Errorf("%s: the consumer ran for a handshake gin-jwt refused", name)
		}
	}

	// gin-jwt's login view issues the token (and, with SendCookie, the cookie a browser's
	// socket will carry).
	browser := ts.Browser()
	resp, err := browser.Post(ts.URL+"/login", "application/json", strings.NewReader(`{"username":"ada","password":"letmein"}`))
	if err != nil {
		t.Fatal(err)
	}
	var login struct{ Token string }
	err = json.NewDecoder(resp.Body).Decode(&login)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK || login.Token == "" {
		t.Fatalf("login: %d %v", resp.StatusCode, err)
	}
	for name, opt := range map[string]wstest.Option{
		"Authorization header": wstest.Header("Authorization", "Bearer "+login.Token),
		"cookie":               wstest.Jar(browser.Jar),
	} {
		seen, _ := h.accepted(t, ts.Communicator("/ws", opt))
		if seen["user"] != "ada" || seen["role"] != "editor" || seen["sub"] != "ada" {
			t.Errorf("%s: Connect saw %v, want gin-jwt's identity ada and claims role=editor, id=ada", name, seen)
		}
	}
}
