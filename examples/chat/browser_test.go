package main

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"ginws.dev/examples/internal/browsertest"
)

// TestChatInBrowser: two people in two headless Chromium profiles sign in through the page, enter
// one room, and a message typed by one shows up on the other's page (and on the sender's).
func TestChatInBrowser(t *testing.T) {
	t.Parallel()
	chatInBrowser(t, false)
}

// TestChatInBrowserCompressed is the same chat with -compress: Chromium offers permessage-deflate
// on every socket, so both pages' sockets must have negotiated it, and a message long enough to be
// compressed (over the 256-byte threshold) must arrive intact.
func TestChatInBrowserCompressed(t *testing.T) {
	t.Parallel()
	chatInBrowser(t, true)
}

func chatInBrowser(t *testing.T, compress bool) {
	browser := browsertest.Start(t)
	ts := startAppWith(t, Options{Compress: compress})
	const wait = 30 * time.Second
	text := "hello from alice"
	if compress {
		text += strings.Repeat(", hello again", 40)
	}

	alice, cancelAlice := browser.NewUser()
	defer cancelAlice()
	bob, cancelBob := browser.NewUser()
	defer cancelBob()

	enter := func(tab context.Context, name string) {
		browsertest.Do(t, tab, wait,
			chromedp.Navigate(ts.URL+"/?next=/chat/lobby/"),
			chromedp.WaitVisible(chromedp.ID("username")),
			chromedp.SendKeys(chromedp.ID("username"), name),
			chromedp.Click(chromedp.ID("login")),
			chromedp.WaitVisible(chromedp.CSS(`body[data-connected="true"]`)),
		)
	}
	enter(alice, "alice")
	enter(bob, "bob")

	browsertest.Do(t, alice, wait,
		chromedp.SendKeys(chromedp.ID("message-input"), text),
		chromedp.Click(chromedp.ID("send")),
	)
	for name, tab := range map[string]context.Context{"bob": bob, "alice": alice} {
		ext := browsertest.Value(t, tab, wait, chromedp.Evaluate[string](`socket.extensions`))
		if want := map[bool]string{true: "permessage-deflate", false: ""}[compress]; !strings.HasPrefix(ext, want) || (!compress && ext != "") {
			t.Fatalf("%s's socket negotiated extensions %q (compress %v)", name, ext, compress)
		}
		browsertest.Value(t, tab, wait,
			chromedp.Poll[bool](`document.querySelector("#chat-log").textContent.includes(`+strconv.Quote(text)+`)`))
		log := browsertest.Value(t, tab, wait, chromedp.Text(chromedp.ID("chat-log")))
		if !strings.Contains(log, "alice") {
			t.Fatalf("%s's page shows %q, want the message with its author", name, log)
		}
	}
}

// TestChatPageAcrossRestarts: the room page disables sending while it has no socket, reconnects by
// itself when the server comes back with the same (default, kept) session key, and, once its
// session is gone, says so with a link to sign in again instead of retrying forever.
func TestChatPageAcrossRestarts(t *testing.T) {
	browser := browsertest.Start(t)
	const wait = 30 * time.Second
	keyFile := filepath.Join(t.TempDir(), "chat-session-key")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	base := "http://" + addr
	var handshakes atomic.Int64
	server := runApp(t, ln, keyFile, &handshakes)

	tab, cancel := browser.NewUser()
	defer cancel()
	sendable := func(want bool) {
		t.Helper()
		expr := `!document.querySelector("#message-input").disabled && !document.querySelector("#send").disabled`
		if !want {
			expr = `document.querySelector("#message-input").disabled && document.querySelector("#send").disabled`
		}
		browsertest.Value(t, tab, wait, chromedp.Poll[bool](expr))
	}
	browsertest.Do(t, tab, wait,
		chromedp.Navigate(base+"/?next=/chat/lobby/"),
		chromedp.WaitVisible(chromedp.ID("username")),
		chromedp.SendKeys(chromedp.ID("username"), "alice"),
		chromedp.Click(chromedp.ID("login")),
		chromedp.WaitVisible(chromedp.CSS(`body[data-connected="true"]`)),
	)
	sendable(true)

	// A restart with the default key: the page waits with sending disabled, then reconnects and
	// the cookie it holds is still good.
	server.stop(t)
	browsertest.Do(t, tab, wait, chromedp.WaitVisible(chromedp.CSS(`body[data-connected="false"]`)))
	sendable(false)
	ln, err = net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	server = runApp(t, ln, keyFile, &handshakes)
	browsertest.Do(t, tab, wait,
		chromedp.WaitVisible(chromedp.CSS(`body[data-connected="true"]`)),
		chromedp.SendKeys(chromedp.ID("message-input"), "still here"),
		chromedp.Click(chromedp.ID("send")),
	)
	sendable(true)
	browsertest.Value(t, tab, wait,
		chromedp.Poll[bool](`document.querySelector("#chat-log").textContent.includes("alicestill here")`))

	// Signed out elsewhere (another tab, say): the open socket keeps going, but the next
	// handshake is refused with 403; the page asks /whoami, learns why, and stops.
	if ok := browsertest.Value(t, tab, wait, chromedp.Evaluate[bool](
		`fetch("/logout", {method: "POST"}).then(r => r.ok)`, chromedp.EvalAwaitPromise)); !ok {
		t.Fatal("POST /logout failed")
	}
	server.stop(t)
	ln, err = net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	server = runApp(t, ln, keyFile, &handshakes)
	defer server.stop(t)
	browsertest.Do(t, tab, wait, chromedp.WaitVisible(chromedp.CSS(`body[data-state="signed-out"]`)))
	sendable(false)
	status := browsertest.Value(t, tab, wait, chromedp.Text(chromedp.ID("status")))
	if status != "signed out — sign in again" {
		t.Fatalf("status %q, want the signed-out message", status)
	}
	before := handshakes.Load()
	time.Sleep(2500 * time.Millisecond) // longer than the page's first retry delays
	if n := handshakes.Load() - before; n != 0 {
		t.Fatalf("the signed-out page tried %d more handshakes", n)
	}

	// The link leads back through the sign-in page to the room.
	browsertest.Do(t, tab, wait,
		chromedp.Click(chromedp.ID("sign-in-again")),
		chromedp.WaitVisible(chromedp.ID("username")),
		chromedp.SendKeys(chromedp.ID("username"), "alice"),
		chromedp.Click(chromedp.ID("login")),
		chromedp.WaitVisible(chromedp.CSS(`body[data-connected="true"]`)),
	)
	sendable(true)
}

// appRun is one run of the chat app, served the way main serves it.
type appRun struct {
	app  *App
	srv  *http.Server
	done chan error
}

// runApp serves the app on ln with the default session key kept in keyFile, counting WebSocket
// handshakes.
func runApp(t *testing.T, ln net.Listener, keyFile string, handshakes *atomic.Int64) *appRun {
	t.Helper()
	log := slog.New(slog.DiscardHandler)
	key, err := sessionKey("", keyFile, log)
	if err != nil {
		t.Fatal(err)
	}
	app := NewApp(Options{SessionKey: key, Logger: log})
	count := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/ws/") {
			handshakes.Add(1)
		}
		app.Handler().ServeHTTP(w, r)
	})
	a := &appRun{app: app, srv: app.WS.HTTPServer(ln.Addr().String(), count), done: make(chan error, 1)}
	go func() { a.done <- a.srv.Serve(ln) }()
	return a
}

// stop shuts the run down as main does on SIGTERM: sockets get 1001, Disconnect handlers finish.
func (a *appRun) stop(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := a.srv.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if err := a.app.WS.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-a.done; !errors.Is(err, http.ErrServerClosed) {
		t.Fatal(err)
	}
}
