package main

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"go.uber.org/goleak"

	"ginws.dev/ginws/wstest"
)

func TestMain(m *testing.M) {
	gin.SetMode(gin.TestMode)
	goleak.VerifyTestMain(m)
}

func startApp(t *testing.T) *wstest.Server {
	t.Helper()
	app := NewApp(Options{SessionKey: []byte("0123456789abcdef0123456789abcdef"), Logger: slog.New(slog.DiscardHandler)})
	ts := wstest.NewServer(t, app.Handler())
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = app.WS.Shutdown(ctx)
	})
	return ts
}

func signIn(t *testing.T, ts *wstest.Server, name string) *http.Client {
	t.Helper()
	b := ts.Browser()
	b.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := b.PostForm(ts.URL+"/login", url.Values{"username": {name}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("login: %d", resp.StatusCode)
	}
	return b
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

type chatOut struct {
	Message string `json:"message"`
	User    string `json:"user"`
	Error   string `json:"error"`
}

func TestChatRoundTrip(t *testing.T) {
	t.Parallel()
	ts := startApp(t)
	ctx := ctxT(t)
	alice := ts.Communicator("/ws/chat/lobby/", wstest.Jar(signIn(t, ts, "alice").Jar))
	bob := ts.Communicator("/ws/chat/lobby", wstest.Jar(signIn(t, ts, "bob").Jar)) // no trailing slash
	carol := ts.Communicator("/ws/chat/other/", wstest.Jar(signIn(t, ts, "carol").Jar))
	for _, c := range []*wstest.Communicator{alice, bob, carol} {
		c.MustConnect(ctx)
	}
	if err := alice.SendJSON(ctx, map[string]string{"message": "hello <b>room</b>"}); err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]*wstest.Communicator{"alice": alice, "bob": bob} {
		var got chatOut
		if err := c.ReceiveJSON(ctx, &got); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if got.Message != "hello <b>room</b>" || got.User != "alice" {
			t.Fatalf("%s got %+v", name, got)
		}
	}
	if err := carol.ReceiveNothing(ctx, 100*time.Millisecond); err != nil {
		t.Fatalf("another room received the message: %v", err)
	}
	if err := bob.SendJSON(ctx, map[string]string{"message": ""}); err != nil {
		t.Fatal(err)
	}
	var got chatOut
	if err := bob.ReceiveJSON(ctx, &got); err != nil || got.Error == "" {
		t.Fatalf("empty message: %+v %v", got, err)
	}
}

func TestAnonymousSocketIsRefused(t *testing.T) {
	t.Parallel()
	ts := startApp(t)
	res, err := ts.Communicator("/ws/chat/lobby/").Connect(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	if res.Accepted || res.Status != http.StatusForbidden {
		t.Fatalf("anonymous: %+v, want 403", res)
	}
	res, err = ts.Communicator("/ws/chat/no%20spaces/", wstest.Jar(signIn(t, ts, "alice").Jar)).Connect(ctxT(t))
	if err != nil || res.Accepted || res.Status != http.StatusNotFound {
		t.Fatalf("bad room: %+v %v", res, err)
	}
}

func TestPages(t *testing.T) {
	t.Parallel()
	ts := startApp(t)
	anon := ts.Browser()
	anon.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := anon.Get(ts.URL + "/chat/lobby/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "/?next=") {
		t.Fatalf("anonymous room page: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	b := signIn(t, ts, "alice")
	resp, err = b.Get(ts.URL + "/chat/lobby/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "Room lobby") {
		t.Fatalf("room page: %d\n%s", resp.StatusCode, body)
	}
	resp, err = b.PostForm(ts.URL+"/login", url.Values{"username": {""}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("empty username: %d", resp.StatusCode)
	}
}
