package middleware_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"net/url"
	"testing"

	"github.com/gin-contrib/sessions"
	"github.com/gin-contrib/sessions/cookie"
	"github.com/gin-contrib/sessions/memstore"
	"github.com/gin-contrib/sessions/redis"
	"github.com/gin-gonic/gin"
	redigo "github.com/gomodule/redigo/redis"
	"github.com/gorilla/securecookie"

	"ginws.dev/ginws"
	"ginws.dev/ginws/redislayer/redistest"
	"ginws.dev/ginws/wstest"
	"ginws.dev/middleware"
)

// An app on gin-contrib/sessions keeps its views as they are (sessions.Default(c)); its socket
// route adds middleware.Sessions with the same store and cookie name. Both find the same gorilla
// session, so the consumer sees what the views saved, saves where a server-side store allows it,
// and gets ErrSessionNotSavable from a cookie store.
func TestGinContribSessions(t *testing.T) {
	for _, tc := range []struct {
		name    string
		store   func(t *testing.T) sessions.Store
		savable bool // the store keeps the data server side: Persist and Reload reach it
	}{
		{name: "memstore", savable: true, store: func(*testing.T) sessions.Store {
			return memstore.NewStore(securecookie.GenerateRandomKey(32))
		}},
		{name: "redis", savable: true, store: contribRedisStore},
		{name: "cookie", savable: false, store: func(*testing.T) sessions.Store {
			return cookie.NewStore(securecookie.GenerateRandomKey(32))
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, ts := contribApp(t, tc.store(t))
			ctx := ctxT(t)

			// Anonymous: RequireUser refuses with 403 before the upgrade, from the
			// gin-contrib session the views use.
			h.refused(t, ts.Communicator("/ws"), http.StatusForbidden)

			browser := ts.Browser()
			postForm(t, browser, ts.URL+"/login", url.Values{"username": {"ada"}})
			comm := ts.Communicator("/ws", wstest.Jar(browser.Jar))

			// What the login view stored is in Connect, and still there later.
			seen, _ := h.accepted(t, comm)
			if seen["user"] != "ada" || seen["color"] != "blue" {
				t.Fatalf("Connect saw %v, want user ada and the color the view saved", seen)
			}
			if seen["rawInScope"] != false {
				t.Fatal("sessions.Default's object reached the Scope: its Save would write to a response Gin reuses for another request")
			}
			if got := contribAsk(t, comm, "get", ""); got["color"] != "blue" {
				t.Fatalf("after Connect the consumer saw %v", got)
			}

			// The consumer saves: with a server-side store the next HTTP request sees it;
			// with a cookie store it cannot, and says so.
			res := contribAsk(t, comm, "set", "green")
			if tc.savable {
				if res["saved"] != true {
					t.Fatalf("Persist with a server-side store: %v", res)
				}
				if got := httpGet(t, browser, ts.URL+"/color"); got != "green" {
					t.Fatalf("the view after the consumer saved: %q, want green", got)
				}
			} else {
				if res["saved"] == true || res["notSavable"] != true {
					t.Fatalf("Persist with a cookie store must fail with ErrSessionNotSavable: %v", res)
				}
				if got := httpGet(t, browser, ts.URL+"/color"); got != "blue" {
					t.Fatalf("the cookie session changed: %q", got)
				}
			}

			// A view saves after the handshake: Reload sees it where the data is server
			// side; a cookie store can only reread the handshake's cookie.
			postForm(t, browser, ts.URL+"/color", url.Values{"color": {"red"}})
			want := "red"
			if !tc.savable {
				want = "blue"
			}
			if got := contribAsk(t, comm, "reload", ""); got["color"] != want {
				t.Fatalf("after Reload the consumer saw %v, want color %s", got, want)
			}
			if err := comm.Disconnect(ctx); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// contribRedisStore is gin-contrib/sessions' Redis store on the test Redis, under a key prefix
// of its own, removed when the test ends.
func contribRedisStore(t *testing.T) sessions.Store {
	redistest.Need(t)
	store, err := redis.NewStore(4, "tcp", redistest.Addr, "", "", securecookie.GenerateRandomKey(32))
	if err != nil {
		t.Fatal(err)
	}
	rs, err := redis.GetRedisStore(store)
	if err != nil {
		t.Fatal(err)
	}
	prefix := "ginws-test-contribsessions-" + randomHex(t) + ":"
	rs.SetKeyPrefix(prefix)
	t.Cleanup(func() {
		conn := rs.Pool.Get()
		keys, err := redigo.Strings(conn.Do("KEYS", prefix+"*"))
		if err == nil && len(keys) == 0 {
			t.Error("no session reached Redis: the test did not use the Redis store")
		}
		for _, k := range keys {
			_, _ = conn.Do("DEL", k)
		}
		conn.Close()
		_ = rs.Close()
	})
	return store
}

func randomHex(t *testing.T) string {
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// contribApp is an app written for gin-contrib/sessions: its views use sessions.Default(c) and
// know nothing of ginws; only the socket route adds middleware.Sessions.
func contribApp(t *testing.T, store sessions.Store) (*harness, *wstest.Server) {
	h := newHarness(t)
	r := h.engine
	r.Use(sessions.Sessions("mysession", store))
	save := func(c *gin.Context, kv ...string) {
		s := sessions.Default(c)
		for i := 0; i+1 < len(kv); i += 2 {
			s.Set(kv[i], kv[i+1])
		}
		if err := s.Save(); err != nil {
			c.String(http.StatusInternalServerError, err.Error())
			return
		}
		c.Status(http.StatusNoContent)
	}
	r.POST("/login", func(c *gin.Context) { save(c, "user_id", c.PostForm("username"), "color", "blue") })
	r.POST("/color", func(c *gin.Context) { save(c, "color", c.PostForm("color")) })
	r.GET("/color", func(c *gin.Context) {
		v, _ := sessions.Default(c).Get("color").(string)
		c.String(http.StatusOK, v)
	})
	r.GET("/ws",
		middleware.Sessions(store, "mysession", middleware.WithLogger(discardLogger())),
		middleware.LoadUser(middleware.SessionUser("user_id", findAccount)),
		middleware.RequireUser(),
		h.ws.Mount(func() ginws.Consumer { return &contribConsumer{connects: &h.connects} }))
	return h, h.start(t)
}

// contribConsumer reports its user and the session's color at Connect, and on request reads,
// sets (and persists) or reloads the color.
type contribConsumer struct {
	ginws.JSONConsumer[map[string]string]
	connects interface{ Add(int32) int32 }
}

func (s *contribConsumer) Connect(ctx context.Context) error {
	s.connects.Add(1)
	u, ok := middleware.UserFrom[*account](s.Scope())
	if !ok {
		return errors.New("RequireUser let an anonymous request through")
	}
	sess, ok := middleware.SessionFrom(s.Scope())
	if !ok {
		return errors.New("no session in the Scope")
	}
	if err := s.Accept(); err != nil {
		return err
	}
	_, raw := s.Scope().Value(sessions.DefaultKey) // bound to the handshake's response: left out
	return s.SendJSON(map[string]any{"user": u.Name, "color": sess.Values["color"], "rawInScope": raw})
}

func (s *contribConsumer) ReceiveJSON(ctx context.Context, in map[string]string) error {
	sess, _ := middleware.SessionFrom(s.Scope())
	switch in["op"] {
	case "set":
		sess.Values["color"] = in["color"]
		err := sess.Persist(ctx)
		return s.SendJSON(map[string]any{"saved": err == nil, "notSavable": errors.Is(err, middleware.ErrSessionNotSavable)})
	case "reload":
		if err := sess.Reload(ctx); err != nil {
			return err
		}
	}
	return s.SendJSON(map[string]any{"color": sess.Values["color"]})
}

// contribAsk sends op to a contribConsumer and returns its answer.
func contribAsk(t *testing.T, comm *wstest.Communicator, op, color string) map[string]any {
	t.Helper()
	ctx := ctxT(t)
	if err := comm.SendJSON(ctx, map[string]string{"op": op, "color": color}); err != nil {
		t.Fatal(err)
	}
	var res map[string]any
	if err := comm.ReceiveJSON(ctx, &res); err != nil {
		t.Fatal(err)
	}
	return res
}

func postForm(t *testing.T, browser *http.Client, u string, form url.Values) {
	t.Helper()
	resp, err := browser.PostForm(u, form)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("POST %s: %d", u, resp.StatusCode)
	}
}

func httpGet(t *testing.T, browser *http.Client, u string) string {
	t.Helper()
	resp, err := browser.Get(u)
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
