package ginws_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gin-gonic/gin"

	"ginws.dev/ginws"
	"ginws.dev/ginws/wstest"
)

// serveRecommended serves r with the server Server.HTTPServer builds, adjusted by tune.
func serveRecommended(t *testing.T, ws *ginws.Server, r http.Handler, tune func(*http.Server)) *httptest.Server {
	t.Helper()
	ts := httptest.NewUnstartedServer(r)
	ts.Config = ws.HTTPServer("", r)
	if tune != nil {
		tune(ts.Config)
	}
	ts.Start()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = ts.Config.Shutdown(ctx)
		_ = ws.Wait(ctx)
		ts.Close()
	})
	return ts
}

func communicator(t *testing.T, ts *httptest.Server, path string, opts ...wstest.Option) *wstest.Communicator {
	return wstest.New(t, "ws"+strings.TrimPrefix(ts.URL, "http")+path, opts...)
}

// A handshake with an oversized header is refused with 431 before any handler runs, so anonymous
// visitors cannot pin large headers in the Scopes of long-lived sockets.
func TestHTTPServerRefusesHugeHeaders(t *testing.T) {
	t.Parallel()
	ws := ginws.New(ginws.Config{Logger: discard()})
	r := gin.New()
	r.GET("/ws/:room", ws.Mount(func() ginws.Consumer { return &echo{} }))
	ts := serveRecommended(t, ws, r, nil)
	res, err := communicator(t, ts, "/ws/x", wstest.Header("X-Padding", strings.Repeat("a", 100<<10))).Connect(testCtx(t))
	if err != nil || res.Accepted || res.Status != http.StatusRequestHeaderFieldsTooLarge {
		t.Fatalf("100 KB header: %+v %v, want HTTP 431", res, err)
	}
	if ok, err := communicator(t, ts, "/ws/x").Connect(testCtx(t)); err != nil || !ok.Accepted {
		t.Fatalf("an ordinary handshake: %+v %v", ok, err)
	}
}

// net/http's read deadline (ReadTimeout) does not cut an upgraded socket, even one without
// pings, and Shutdown closes the socket with 1001.
func TestHTTPServerTimeoutsSpareSockets(t *testing.T) {
	t.Parallel()
	ws := ginws.New(ginws.Config{Logger: discard(), PingInterval: -1})
	r := gin.New()
	r.GET("/ws/:room", ws.Mount(func() ginws.Consumer { return &echo{} }))
	ts := serveRecommended(t, ws, r, func(s *http.Server) {
		s.ReadTimeout, s.WriteTimeout = 200*time.Millisecond, 200*time.Millisecond
	})
	ctx := testCtx(t)
	c := communicator(t, ts, "/ws/x")
	c.MustConnect(ctx)
	time.Sleep(600 * time.Millisecond) // three times the HTTP deadlines
	if err := c.SendText(ctx, "still here"); err != nil {
		t.Fatal(err)
	}
	if got := recvText(t, c); got != "still here" {
		t.Fatalf("echo after the HTTP deadlines passed: %q", got)
	}
	if err := ts.Config.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if code := waitClosed(t, c); code != ginws.CloseGoingAway {
		t.Fatalf("Shutdown closed the socket with %d, want 1001", code)
	}
}
