package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"ginws.dev/examples/internal/browsertest"
	"ginws.dev/ginws/redislayer/redistest"
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

	// Who is here, live: both pages list both users; when bob's tab closes, alice's page says so.
	const here = `Array.from(document.querySelectorAll("#members li")).map(li => li.textContent).join(",")`
	for _, tab := range []context.Context{alice, bob} {
		browsertest.Value(t, tab, wait, chromedp.Poll[bool](here+` === "alice,bob"`))
	}
	cancelBob()
	browsertest.Value(t, alice, wait, chromedp.Poll[bool](here+` === "alice"`))
	browsertest.Value(t, alice, wait,
		chromedp.Poll[bool](`document.querySelector("#chat-log").textContent.includes("bob left")`))
}

// TestChatPageAcrossRestarts: the room page disables sending while it has no socket, reconnects by
// itself when the server comes back with the same (default, kept) session key, and, once its
// session is gone, says so with a link to sign in again instead of retrying forever.
func TestChatPageAcrossRestarts(t *testing.T) {
	browser := browsertest.Start(t)
	const wait = 30 * time.Second
	keyFile := filepath.Join(t.TempDir(), "chat-session-key")
	ln, err := net.Listen("tcp", redistest.RestartableAddr(t)) // restarted on this address below
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

// TestChatPageResumesAfterRestart: the page's chat process is killed and started again (with
// -secret and the Redis layer) while a client on another chat process keeps chatting. The page
// reconnects with the id of the last message it showed and then shows every message exactly once,
// in order.
func TestChatPageResumesAfterRestart(t *testing.T) {
	t.Parallel()
	redistest.Need(t)
	browser := browsertest.Start(t)
	const wait = 30 * time.Second
	bin := filepath.Join(t.TempDir(), "chat")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	prefix := fmt.Sprintf("asgichatbrowser%08x:", time.Now().UnixNano()&0xffffffff)
	layerURL := "redis://127.0.0.1:6379/3?prefix=" + prefix
	t.Cleanup(func() { flushPrefix(t, prefix) })
	secret := "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"
	other := startChat(t, bin, layerURL, secret)
	addr, proc := startChatProc(t, bin, layerURL, secret, "")

	tab, cancel := browser.NewUser()
	defer cancel()
	browsertest.Do(t, tab, wait,
		chromedp.Navigate("http://"+addr+"/?next=/chat/restart/"),
		chromedp.WaitVisible(chromedp.ID("username")),
		chromedp.SendKeys(chromedp.ID("username"), "alice"),
		chromedp.Click(chromedp.ID("login")),
		chromedp.WaitVisible(chromedp.CSS(`body[data-connected="true"]`)),
	)
	ctx, cancelCtx := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancelCtx()
	bob := dialRoom(ctx, t, other, "bob", "restart")
	const total = 150
	sent := make(chan error, 1)
	go func() {
		for i := 0; i < total; i++ {
			if err := bob.WriteJSON(map[string]string{"message": fmt.Sprint("n", i)}); err != nil {
				sent <- err
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
		sent <- nil
	}()
	browsertest.Value(t, tab, wait, chromedp.Poll[bool](`document.querySelector("#chat-log").textContent.includes("n30")`))
	_ = proc.Process.Signal(syscall.SIGKILL)
	_, _ = proc.Process.Wait()
	startChatProc(t, bin, layerURL, secret, addr)
	if err := <-sent; err != nil {
		t.Fatal(err)
	}
	browsertest.Value(t, tab, wait, chromedp.Poll[bool](fmt.Sprintf(`document.querySelector("#chat-log").textContent.includes("n%d")`, total-1)))
	time.Sleep(200 * time.Millisecond) // anything after the last message would be a duplicate
	lines := browsertest.Value(t, tab, wait, chromedp.Evaluate[[]string](
		`Array.from(document.querySelectorAll("#chat-log .message")).map(d => d.lastChild.textContent)`))
	want := make([]string, total)
	for i := range want {
		want[i] = fmt.Sprint("n", i)
	}
	if strings.Join(lines, " ") != strings.Join(want, " ") {
		t.Fatalf("the page shows %d messages:\n%v\nwant n0..n%d once each, in order", len(lines), lines, total-1)
	}
	if gaps := browsertest.Value(t, tab, wait, chromedp.Evaluate[int](`document.querySelectorAll("#chat-log .gap").length`)); gaps != 0 {
		t.Fatalf("the page reported %d history gaps", gaps)
	}
}
