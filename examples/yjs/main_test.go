package main

import (
	"bytes"
	"context"
	"encoding/hex"
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

func startApp(t *testing.T, o Options) (*App, *wstest.Server) {
	t.Helper()
	o.Logger = slog.New(slog.DiscardHandler)
	if o.SessionKey == nil {
		o.SessionKey = []byte("0123456789abcdef0123456789abcdef")
	}
	app := NewApp(o)
	ts := wstest.NewServer(t, app.Handler())
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = app.WS.Shutdown(ctx)
		_ = app.Yjs.Close(ctx)
	})
	return app, ts
}

// ctxT bounds a hang only: under -race, with every package's tests sharing two cores,
// TestLargeDocument once took longer than the 10 s this was.
func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// y-protocols framing, written here from the spec so the test does not trust the server's codec.
func varUint(b []byte, v uint64) []byte {
	for v >= 0x80 {
		b = append(b, byte(v)|0x80)
		v >>= 7
	}
	return append(b, byte(v))
}

func varBytes(b, p []byte) []byte { return append(varUint(b, uint64(len(p))), p...) }

// syncMsg is a y-websocket sync message: 0, sub-type, the payload.
func syncMsg(sub uint64, payload []byte) []byte { return varBytes([]byte{0, byte(sub)}, payload) }

// yMsg is a decoded y-websocket message.
type yMsg struct {
	typ, sub uint64 // sub only for sync messages
	payload  []byte
}

func parseMsg(t *testing.T, b []byte) yMsg {
	t.Helper()
	off := 0
	next := func() uint64 {
		var v uint64
		for shift := 0; ; shift += 7 {
			if off >= len(b) || shift > 63 {
				t.Fatalf("truncated message %x", b)
			}
			c := b[off]
			off++
			v |= uint64(c&0x7f) << shift
			if c < 0x80 {
				return v
			}
		}
	}
	m := yMsg{typ: next()}
	if m.typ == 0 {
		m.sub = next()
	}
	n := next()
	if uint64(len(b)-off) != n {
		t.Fatalf("message %x: payload length %d, %d bytes left", b, n, len(b)-off)
	}
	m.payload = b[off:]
	return m
}

// receiveSync returns the next sync message of the given sub-type, skipping awareness.
func receiveSync(t *testing.T, ctx context.Context, c *wstest.Communicator, sub uint64) []byte {
	t.Helper()
	for {
		b, err := c.ReceiveBytes(ctx)
		if err != nil {
			t.Fatalf("waiting for sync message %d: %v", sub, err)
		}
		m := parseMsg(t, b)
		if m.typ == 0 && m.sub == sub {
			return m.payload
		}
		if m.typ == 0 && m.sub != 2 && m.sub != sub {
			t.Fatalf("sync message %d while waiting for %d", m.sub, sub)
		}
	}
}

// Real updates recorded from yjs 13.6.33: client 1 types "a" then "b" into Y.Text "text".
var (
	typeA = mustHex("01010100040104746578740161" + "00")
	typeB = mustHex("01010101840100" + "0162" + "00")
)

func mustHex(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}

// join connects a client to a room and completes the y-protocols handshake both ways, returning
// the document the server sent.
func join(t *testing.T, ctx context.Context, ts *wstest.Server, room string, opts ...wstest.Option) (*wstest.Communicator, []byte) {
	t.Helper()
	c := ts.Communicator("/yjs/"+room, opts...)
	c.MustConnect(ctx)
	// The server opens with sync step 1 (its state vector); answer with our (empty) update.
	receiveSync(t, ctx, c, 0)
	if err := c.SendBytes(ctx, syncMsg(1, []byte{0, 0})); err != nil {
		t.Fatal(err)
	}
	// Ask for the whole document: sync step 1 with an empty state vector.
	if err := c.SendBytes(ctx, syncMsg(0, []byte{0})); err != nil {
		t.Fatal(err)
	}
	return c, receiveSync(t, ctx, c, 1)
}

// TestSocketRelaysAndKeepsTheDocument: a Go client speaking y-protocols types into a room; the
// other client in the room receives each update, a client in another room receives nothing, and a
// client that joins later gets the document with both keystrokes in sync step 2.
func TestSocketRelaysAndKeepsTheDocument(t *testing.T) {
	t.Parallel()
	_, ts := startApp(t, Options{})
	ctx := ctxT(t)
	alice, doc := join(t, ctx, ts, "notes")
	if !bytes.Equal(doc, []byte{0, 0}) {
		t.Fatalf("new room's document: %x, want the empty update 0000", doc)
	}
	bob, _ := join(t, ctx, ts, "notes")
	other, _ := join(t, ctx, ts, "elsewhere")

	for _, u := range [][]byte{typeA, typeB} {
		if err := alice.SendBytes(ctx, syncMsg(2, u)); err != nil {
			t.Fatal(err)
		}
		if got := receiveSync(t, ctx, bob, 2); !bytes.Equal(got, u) {
			t.Fatalf("bob received %x, alice sent %x", got, u)
		}
	}
	if err := other.ReceiveNothing(ctx, 200*time.Millisecond); err != nil {
		t.Fatalf("a client in another room: %v", err)
	}
	_, doc = join(t, ctx, ts, "notes")
	// Both keystrokes, in either of the forms yjs itself writes: Y.mergeUpdates keeps two
	// items, Y.encodeStateAsUpdate of a document that applied them has one item "ab".
	merged := mustHex("01020100040104746578740161840100016200")
	state := mustHex("010101000401047465787402616200")
	if !bytes.Equal(doc, merged) && !bytes.Equal(doc, state) {
		t.Fatalf("late joiner got %x, want %x or %x", doc, merged, state)
	}
}

// TestAwarenessReachesTheRoom: presence (a name and colour) sent by one client reaches the other.
func TestAwarenessReachesTheRoom(t *testing.T) {
	t.Parallel()
	_, ts := startApp(t, Options{})
	ctx := ctxT(t)
	alice, _ := join(t, ctx, ts, "notes")
	bob, _ := join(t, ctx, ts, "notes")
	state := `{"user":{"name":"otter-1","colour":"#3cb44b"}}`
	var entry []byte
	entry = varUint(entry, 1) // one client
	entry = varUint(entry, 7) // client ID
	entry = varUint(entry, 1) // clock
	entry = varBytes(entry, []byte(state))
	if err := alice.SendBytes(ctx, varBytes([]byte{1}, entry)); err != nil {
		t.Fatal(err)
	}
	for {
		b, err := bob.ReceiveBytes(ctx)
		if err != nil {
			t.Fatalf("bob waiting for awareness: %v", err)
		}
		if m := parseMsg(t, b); m.typ == 1 {
			if !bytes.Contains(m.payload, []byte(state)) {
				t.Fatalf("awareness %x lacks alice's state", m.payload)
			}
			return
		}
	}
}

// TestPageAndScript: the page names its room, loads the embedded bundle, and refuses odd rooms.
func TestPageAndScript(t *testing.T) {
	t.Parallel()
	_, ts := startApp(t, Options{})
	get := func(path string) (int, string, http.Header) {
		resp, err := http.Get(ts.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body), resp.Header
	}
	code, body, _ := get("/?room=notes")
	if code != http.StatusOK || !strings.Contains(body, `data-room="notes"`) || !strings.Contains(body, `src="/static/app.js"`) {
		t.Fatalf("page: %d\n%s", code, body)
	}
	if code, body, _ = get("/"); code != http.StatusOK || !strings.Contains(body, `data-room="lobby"`) {
		t.Fatalf("default room: %d\n%s", code, body)
	}
	if code, _, _ = get("/?room=" + url.QueryEscape(`"><script>`)); code != http.StatusNotFound {
		t.Fatalf("bad room name: %d, want 404", code)
	}
	code, js, h := get("/static/app.js")
	want, _ := assets.ReadFile("web/dist/app.js")
	if code != http.StatusOK || js != string(want) || !strings.HasPrefix(h.Get("Content-Type"), "text/javascript") {
		t.Fatalf("script: %d %q, %d bytes (want %d)", code, h.Get("Content-Type"), len(js), len(want))
	}
	if !strings.Contains(js, "WebsocketProvider") && !strings.Contains(js, "y-websocket") && len(js) < 20000 {
		t.Fatalf("the bundle does not look like yjs + y-websocket (%d bytes)", len(js))
	}
}

// TestRequireLogin: with -require-login, the page asks for a name, the socket refuses anonymous
// handshakes with 403, and the session cookie set by the login view opens both.
func TestRequireLogin(t *testing.T) {
	t.Parallel()
	_, ts := startApp(t, Options{RequireLogin: true})
	ctx := ctxT(t)
	res, err := ts.Communicator("/yjs/notes").Connect(ctx)
	if err != nil || res.Accepted || res.Status != http.StatusForbidden {
		t.Fatalf("anonymous socket: %+v %v, want 403", res, err)
	}
	b := ts.Browser()
	resp, err := b.Get(ts.URL + "/?room=notes")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), `action="/login"`) || strings.Contains(string(body), "app.js") {
		t.Fatalf("anonymous page should ask for a name:\n%s", body)
	}
	resp, err = b.PostForm(ts.URL+"/login", url.Values{"username": {"ada"}, "room": {"notes"}})
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `data-user="ada"`) || !strings.Contains(string(body), `data-room="notes"`) {
		t.Fatalf("after login: %d\n%s", resp.StatusCode, body)
	}
	c, doc := join(t, ctx, ts, "notes", wstest.Jar(b.Jar))
	if len(doc) == 0 {
		t.Fatal("no document")
	}
	if err := c.Disconnect(ctx); err != nil {
		t.Fatal(err)
	}
	resp, err = b.PostForm(ts.URL+"/login", url.Values{"username": {""}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("empty name: %d, want 400", resp.StatusCode)
	}
}

// TestBadInputKeepsServing: a garbage frame closes that one connection with a code saying why;
// the room keeps working for the others.
func TestBadInputKeepsServing(t *testing.T) {
	t.Parallel()
	_, ts := startApp(t, Options{})
	ctx := ctxT(t)
	for _, junk := range [][]byte{{0xff}, {0, 2, 5, 1}, {0, 2, 3, 1, 1, 0xff}, {9, 9, 9}} {
		c, _ := join(t, ctx, ts, "notes")
		if err := c.SendBytes(ctx, junk); err != nil {
			t.Fatal(err)
		}
		// The server closes that connection and says why: a protocol code (1002, 1003, 1007 or
		// 1008), not 1011 (a handler failed) and not a dropped connection (1006).
		code, reason, err := c.WaitClosed(ctx)
		if err != nil {
			t.Fatalf("junk %x: %v", junk, err)
		}
		if code != 1002 && code != 1003 && code != 1007 && code != 1008 {
			t.Fatalf("junk %x: closed with %d %q, want a protocol close code", junk, code, reason)
		}
	}
	alice, _ := join(t, ctx, ts, "notes")
	bob, _ := join(t, ctx, ts, "notes")
	if err := alice.SendBytes(ctx, syncMsg(2, typeA)); err != nil {
		t.Fatal(err)
	}
	if got := receiveSync(t, ctx, bob, 2); !bytes.Equal(got, typeA) {
		t.Fatalf("bob received %x", got)
	}
}

// TestLargeDocument: a 3 MB document (one paste) is accepted and sent whole to a newcomer, in one
// frame — over ginws' default 1 MiB read and outbound limits, which the app raises.
func TestLargeDocument(t *testing.T) {
	t.Parallel()
	_, ts := startApp(t, Options{})
	ctx := ctxT(t)
	paste := bytes.Repeat([]byte("lorem ipsum "), 3<<20/12)
	// An update of client 9 inserting paste at the start of Y.Text "text", as yjs writes it.
	u := []byte{1, 1, 9, 0, 0x04, 1}
	u = varBytes(u, []byte("text"))
	u = varBytes(u, paste)
	u = append(u, 0)
	alice, _ := join(t, ctx, ts, "big")
	if err := alice.SendBytes(ctx, syncMsg(2, u)); err != nil {
		t.Fatal(err)
	}
	// Frames are handled in order: once alice's next request is answered, the paste is applied.
	if err := alice.SendBytes(ctx, syncMsg(0, []byte{0})); err != nil {
		t.Fatal(err)
	}
	if got := receiveSync(t, ctx, alice, 1); !bytes.Contains(got, paste) {
		t.Fatalf("alice's own paste is not in the document (%d bytes)", len(got))
	}
	_, doc := join(t, ctx, ts, "big")
	if !bytes.Contains(doc, paste) {
		t.Fatalf("newcomer got %d bytes, want the %d-byte paste in them", len(doc), len(paste))
	}
}
