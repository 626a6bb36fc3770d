package main

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
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

func startApp(t *testing.T) *wstest.Server { t.Helper(); return startAppWith(t, Options{}) }

// startAppWith serves the app with o (its session key and logger set here).
func startAppWith(t *testing.T, o Options) *wstest.Server {
	t.Helper()
	o.SessionKey, o.Logger = []byte("0123456789abcdef0123456789abcdef"), slog.New(slog.DiscardHandler)
	app := NewApp(o)
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
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

type chatOut struct {
	Message string   `json:"message"`
	User    string   `json:"user"`
	Error   string   `json:"error"`
	ID      string   `json:"id"`    // the message's position in the room's history
	Event   string   `json:"event"` // presence: "members", "join" or "leave"; or "history-gap"
	Users   []string `json:"users"`
}

// presenceFrame reports whether a frame's event is one of presence's (members, join, leave).
func presenceFrame(event string) bool {
	return event == "members" || event == "join" || event == "leave"
}

// receiveChat returns the next frame that is not presence's: a chat message, an error or a
// history gap.
func receiveChat(ctx context.Context, c *wstest.Communicator, got *chatOut) error {
	for {
		*got = chatOut{}
		if err := c.ReceiveJSON(ctx, got); err != nil || !presenceFrame(got.Event) {
			return err
		}
	}
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
		if err := receiveChat(ctx, c, &got); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if got.Message != "hello <b>room</b>" || got.User != "alice" {
			t.Fatalf("%s got %+v", name, got)
		}
	}
	var members chatOut
	if err := carol.ReceiveJSON(ctx, &members); err != nil || members.Event != "members" || len(members.Users) != 1 || members.Users[0] != "carol" {
		t.Fatalf("carol's first frame: %+v, %v; want the members of her room", members, err)
	}
	if err := carol.ReceiveNothing(ctx, 100*time.Millisecond); err != nil {
		t.Fatalf("another room received the message: %v", err)
	}
	if err := bob.SendJSON(ctx, map[string]string{"message": ""}); err != nil {
		t.Fatal(err)
	}
	var got chatOut
	if err := receiveChat(ctx, bob, &got); err != nil || got.Error == "" {
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

// Without -secret the key is made once, kept with 0600 permissions and read back by every later
// run — also by processes starting at the same time; -secret wins; a file that holds no key is
// an error rather than something to overwrite.
func TestSessionKeyIsKept(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	file := filepath.Join(t.TempDir(), "ginws", "chat-session-key")

	keys := make([][]byte, 8)
	var wg sync.WaitGroup
	for i := range keys {
		wg.Go(func() {
			k, err := sessionKey("", file, log)
			if err != nil {
				t.Error(err)
			}
			keys[i] = k
		})
	}
	wg.Wait()
	for _, k := range keys[1:] {
		if len(k) != 32 || !bytes.Equal(k, keys[0]) {
			t.Fatalf("processes starting together got different keys: %x and %x", keys[0], k)
		}
	}
	info, err := os.Stat(file)
	if err != nil {
		t.Fatal(err)
	}
	if runtime.GOOS != "windows" && info.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %v, want 0600", info.Mode().Perm())
	}
	again, err := sessionKey("", file, log) // the next run
	if err != nil || !bytes.Equal(again, keys[0]) {
		t.Fatalf("after a restart: key %x (%v), want %x", again, err, keys[0])
	}

	secret := strings.Repeat("ab", 32)
	if k, err := sessionKey(secret, file, log); err != nil || hex.EncodeToString(k) != secret {
		t.Fatalf("-secret: %x %v", k, err)
	}
	if _, err := sessionKey("abcd", file, log); err == nil {
		t.Fatal("a short -secret was accepted")
	}
	if err := os.WriteFile(file, []byte("not a key\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := sessionKey("", file, log); !errors.Is(err, errNotAKey) {
		t.Fatalf("a file holding no key: %v", err)
	}
	if k, err := sessionKey("", "", log); err != nil || len(k) != 32 {
		t.Fatalf("no place for a key file: %x %v, want a random key", k, err)
	}
}

func TestWhoami(t *testing.T) {
	ts := startApp(t)
	get := func(c *http.Client) (int, string) {
		t.Helper()
		resp, err := c.Get(ts.URL + "/whoami")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, strings.TrimSpace(string(body))
	}
	if code, body := get(ts.Browser()); code != http.StatusUnauthorized || body != `{"user":null}` {
		t.Fatalf("anonymous: %d %s", code, body)
	}
	alice := signIn(t, ts, "alice")
	if code, body := get(alice); code != http.StatusOK || body != `{"user":"alice"}` {
		t.Fatalf("alice: %d %s", code, body)
	}
	resp, err := alice.PostForm(ts.URL+"/logout", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if code, _ := get(alice); code != http.StatusUnauthorized {
		t.Fatalf("after signing out: %d", code)
	}
}

// Who is in a room: a new socket first gets the members, then others' arrivals and departures
// (once per user, not per tab); GET /rooms/ROOM/members lists them with their connection counts.
func TestChatPresence(t *testing.T) {
	t.Parallel()
	ts := startApp(t)
	ctx := ctxT(t)
	next := func(name string, c *wstest.Communicator) string {
		t.Helper()
		s, err := c.ReceiveText(ctx)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		return s
	}
	aliceJar, bobJar := signIn(t, ts, "alice"), signIn(t, ts, "bob")
	alice := ts.Communicator("/ws/chat/lobby/", wstest.Jar(aliceJar.Jar))
	alice.MustConnect(ctx)
	if got := next("alice", alice); got != `{"event":"members","users":["alice"]}` {
		t.Fatalf("alice's first frame: %s", got)
	}
	bob := ts.Communicator("/ws/chat/lobby/", wstest.Jar(bobJar.Jar))
	bob.MustConnect(ctx)
	if got := next("bob", bob); got != `{"event":"members","users":["alice","bob"]}` {
		t.Fatalf("bob's first frame: %s", got)
	}
	if got := next("alice", alice); got != `{"event":"join","user":"bob"}` {
		t.Fatalf("alice got %s, want bob's join", got)
	}
	bob2 := ts.Communicator("/ws/chat/lobby/", wstest.Jar(bobJar.Jar)) // a second tab
	bob2.MustConnect(ctx)
	if got := next("bob's second tab", bob2); got != `{"event":"members","users":["alice","bob"]}` {
		t.Fatalf("bob's second tab: %s", got)
	}

	get := func(client *http.Client, path string) (int, string) {
		t.Helper()
		resp, err := client.Get(ts.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, strings.TrimSpace(string(b))
	}
	if code, body := get(aliceJar, "/rooms/lobby/members"); code != http.StatusOK ||
		body != `{"members":[{"user":"alice","connections":1},{"user":"bob","connections":2}]}` {
		t.Fatalf("GET /rooms/lobby/members: %d %s", code, body)
	}
	if code, _ := get(ts.Browser(), "/rooms/lobby/members"); code != http.StatusForbidden {
		t.Fatalf("GET /rooms/lobby/members signed out: %d, want 403", code)
	}
	if code, _ := get(aliceJar, "/rooms/no%20spaces/members"); code != http.StatusNotFound {
		t.Fatalf("GET members of a bad room name: %d, want 404", code)
	}

	if err := bob.Disconnect(ctx); err != nil {
		t.Fatal(err)
	}
	if err := alice.ReceiveNothing(ctx, 200*time.Millisecond); err != nil {
		t.Fatalf("one of bob's tabs closed: %v", err)
	}
	if err := bob2.Disconnect(ctx); err != nil {
		t.Fatal(err)
	}
	if got := next("alice", alice); got != `{"event":"leave","user":"bob"}` {
		t.Fatalf("alice got %s, want bob's leave", got)
	}
	if code, body := get(aliceJar, "/rooms/lobby/members"); code != http.StatusOK || body != `{"members":[{"user":"alice","connections":1}]}` {
		t.Fatalf("GET /rooms/lobby/members after bob left: %d %s", code, body)
	}
}
