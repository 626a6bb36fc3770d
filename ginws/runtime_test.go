package ginws_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/gorilla/websocket"

	"ginws.dev/ginws"
	"ginws.dev/ginws/layer"
	"ginws.dev/ginws/wstest"
)

// A client that breaks the rules is closed with the code for what it broke; Disconnect runs with
// the same code, and the log says why.
func TestBrokenClientInputCloses(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		send func(t *testing.T, ctx context.Context, c *wstest.Communicator)
		code int
		log  string // "": not checked
	}{
		{"a message over ReadLimit → 1009 (one at the limit passes)", func(t *testing.T, ctx context.Context, c *wstest.Communicator) {
			if err := c.SendText(ctx, strings.Repeat("a", 1024)); err != nil {
				t.Fatal(err)
			}
			if got := recvText(t, c); len(got) != 1024 {
				t.Fatalf("a message at the limit must pass, got %d bytes", len(got))
			}
			if err := c.SendText(ctx, strings.Repeat("a", 1025)); err != nil {
				t.Fatal(err)
			}
		}, websocket.CloseMessageTooBig, "ReadLimit"},
		{"invalid UTF-8 in a text message → 1007", func(t *testing.T, ctx context.Context, c *wstest.Communicator) {
			if err := c.SendText(ctx, "ok\xff\xfe"); err != nil {
				t.Fatal(err)
			}
		}, websocket.CloseInvalidFramePayloadData, "invalid UTF-8"},
		{"a continuation frame with no message to continue → 1002", func(t *testing.T, ctx context.Context, c *wstest.Communicator) {
			if _, err := c.Conn().NetConn().Write([]byte{0x80, 0x80, 1, 2, 3, 4}); err != nil {
				t.Fatal(err)
			}
		}, websocket.CloseProtocolError, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cs := make(codes, 1)
			a := newApp(t, ginws.Config{ReadLimit: 1024}, func() ginws.Consumer { return &echo{codes: cs} })
			ctx := testCtx(t)
			comm := a.ts.Communicator("/ws/x")
			comm.MustConnect(ctx)
			tc.send(t, ctx, comm)
			if code := waitClosed(t, comm); code != tc.code {
				t.Fatalf("close code %d, want %d", code, tc.code)
			}
			if code := cs.wait(t); code != tc.code {
				t.Fatalf("Disconnect code %d, want %d", code, tc.code)
			}
			if tc.log != "" {
				a.logs.waitFor(t, tc.log)
			}
		})
	}
}

type chatIn struct {
	Message string `json:"message"`
	N       int    `json:"n"`
}

type jsonEcho struct {
	ginws.JSONConsumer[chatIn]
	lenient bool
	codes   codes
}

func (j *jsonEcho) ReceiveJSON(ctx context.Context, in chatIn) error {
	return j.SendJSON(map[string]any{"message": in.Message, "n": in.N + 1})
}

func (j *jsonEcho) Disconnect(ctx context.Context, code int) { j.codes <- code }

type lenientJSON struct{ jsonEcho }

func (l *lenientJSON) JSONError(ctx context.Context, f ginws.ClientMessage, err error) error {
	return l.SendJSON(map[string]string{"error": err.Error()})
}

func TestJSONConsumer(t *testing.T) {
	t.Parallel()
	cs := make(codes, 4)
	a := newApp(t, ginws.Config{}, func() ginws.Consumer { return &jsonEcho{codes: cs} })
	ctx := testCtx(t)
	comm := a.ts.Communicator("/ws/x")
	comm.MustConnect(ctx)
	if err := comm.SendJSON(ctx, map[string]any{"message": "hi", "n": 1}); err != nil {
		t.Fatal(err)
	}
	var out struct {
		Message string
		N       int
	}
	if err := comm.ReceiveJSON(ctx, &out); err != nil || out.Message != "hi" || out.N != 2 {
		t.Fatalf("got %+v, %v", out, err)
	}

	t.Run("binary frame closes 1003", func(t *testing.T) {
		c := a.ts.Communicator("/ws/x")
		c.MustConnect(ctx)
		if err := c.SendBytes(ctx, []byte("{}")); err != nil {
			t.Fatal(err)
		}
		if code := waitClosed(t, c); code != websocket.CloseUnsupportedData {
			t.Fatalf("close %d, want 1003", code)
		}
		cs.wait(t)
	})
	t.Run("malformed JSON closes 1007", func(t *testing.T) {
		c := a.ts.Communicator("/ws/x")
		c.MustConnect(ctx)
		if err := c.SendText(ctx, `{"message": `); err != nil {
			t.Fatal(err)
		}
		if code := waitClosed(t, c); code != websocket.CloseInvalidFramePayloadData {
			t.Fatalf("close %d, want 1007", code)
		}
		cs.wait(t)
		a.logs.waitFor(t, "undecodable frame")
	})
	t.Run("JSONError keeps the connection", func(t *testing.T) {
		l := newApp(t, ginws.Config{}, func() ginws.Consumer { return &lenientJSON{jsonEcho{codes: make(codes, 1)}} })
		c := l.ts.Communicator("/ws/x")
		c.MustConnect(ctx)
		if err := c.SendText(ctx, `{"n": "not a number"}`); err != nil {
			t.Fatal(err)
		}
		var e struct{ Error string }
		if err := c.ReceiveJSON(ctx, &e); err != nil || !strings.Contains(e.Error, "not valid JSON") {
			t.Fatalf("error reply %+v, %v", e, err)
		}
		if err := c.SendJSON(ctx, map[string]any{"message": "still here"}); err != nil {
			t.Fatal(err)
		}
		if err := c.ReceiveJSON(ctx, &out); err != nil || out.Message != "still here" {
			t.Fatalf("after a bad frame: %+v %v", out, err)
		}
	})
}

// flood sends a 16 KB text frame for every "chunk" event and records its Disconnect code. A client
// of room "fast" gets an outbound limit high enough for the whole burst.
type flood struct {
	ginws.WebsocketConsumer
	codes codes
}

func (f *flood) Connect(ctx context.Context) error {
	if f.Scope().Param("room") == "fast" {
		return f.Accept(ginws.WithOutboundLimit(64 << 20))
	}
	return f.Accept()
}

func (f *flood) Groups() []string { return []string{"flood"} }

var chunk = strings.Repeat("x", 16<<10)

func (f *flood) Events() ginws.Events {
	return ginws.Events{
		"chunk": func(ctx context.Context, ev layer.Message) error { return f.SendText(chunk) },
		"hello": func(ctx context.Context, ev layer.Message) error { return f.SendText("hello") },
	}
}

func (f *flood) Disconnect(ctx context.Context, code int) { f.codes <- code }

// TestSlowClientIsClosedAndNeverBlocksOthers: a client that stops reading is closed with
// CloseSlowClient; group sends keep reaching the others and never wait for it.
//
// Nothing here depends on timing. The burst (16 MB) is four times what the kernel buffers of a
// client that reads nothing can hold (about 4 MB on loopback), so the slow client's queue must
// cross its 256 KB OutboundLimit. The fast client's limit holds the whole burst and its write
// timeout is long, so a reader starved by a busy machine is late, not cut. The slow client's close
// frame waits behind its blocked write until CloseTimeout (10 s) cuts it: the group sends must all
// have returned before that, or they waited for it.
func TestSlowClientIsClosedAndNeverBlocksOthers(t *testing.T) {
	t.Parallel()
	const n = 1000
	lay := layer.NewMemory(layer.MemoryConfig{Capacity: 2 * n})
	cs := make(codes, 2)
	a := newApp(t, ginws.Config{Layer: lay, OutboundLimit: 256 << 10, WriteTimeout: 60 * time.Second, CloseTimeout: 10 * time.Second},
		func() ginws.Consumer { return &flood{codes: cs} })
	ctx := testCtx(t)

	// The slow client: a raw connection that never reads.
	dialRaw(t, a.ts.WSURL("/ws/slow"))
	fast := a.ts.Communicator("/ws/fast")
	fast.MustConnect(ctx)

	for range n {
		if err := lay.GroupSend(ctx, "flood", layer.Message{"type": "chunk"}); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case code := <-cs:
		t.Fatalf("a client was disconnected (%d) before the group sends returned: they waited for it", code)
	default:
	}
	// The fast client gets every message, and stays connected after the slow one is gone.
	for i := range n {
		if s, err := fast.ReceiveText(ctx); err != nil || s != chunk {
			t.Fatalf("fast client, message %d: %.10q %v", i, s, err)
		}
	}
	if code := cs.wait(t); code != ginws.CloseSlowClient {
		t.Fatalf("the slow client was closed with %d, want %d", code, ginws.CloseSlowClient)
	}
	if err := lay.GroupSend(ctx, "flood", layer.Message{"type": "hello"}); err != nil {
		t.Fatal(err)
	}
	if s := recvText(t, fast); s != "hello" {
		t.Fatalf("fast client after the burst: %q", s)
	}
	if st := a.srv.Stats(); st.SlowClients != 1 {
		t.Fatalf("stats: %+v", st)
	}
	a.logs.waitFor(t, `why="outbound queue over OutboundLimit"`)
}

// TestDeadPeerIsDropped: a client that never answers pings is dropped with 1006; one that does
// stays. The live client has 5 s to answer each ping, sent every 100 ms: with 60 ms, and later
// with 500 ms, a busy machine starved its reader past the timeout now and then. The dead one is
// dropped 5 s after its first unanswered ping.
func TestDeadPeerIsDropped(t *testing.T) {
	t.Parallel()
	cs := make(codes, 2)
	a := newApp(t, ginws.Config{PingInterval: 100 * time.Millisecond, PingTimeout: 5 * time.Second},
		func() ginws.Consumer { return &echo{codes: cs} })
	ctx := testCtx(t)
	dead, _, err := websocket.DefaultDialer.DialContext(ctx, a.ts.WSURL("/ws/x"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer dead.Close()
	alive := a.ts.Communicator("/ws/x") // its reader answers pings
	alive.MustConnect(ctx)
	if code := cs.wait(t); code != websocket.CloseAbnormalClosure {
		t.Fatalf("dead peer dropped with %d, want 1006", code)
	}
	time.Sleep(300 * time.Millisecond) // three more pings
	if err := alive.SendText(ctx, "still"); err != nil {
		t.Fatal(err)
	}
	if got := recvText(t, alive); got != "still" {
		t.Fatalf("live client: %q", got)
	}
	a.logs.waitFor(t, "stopped answering pings")
}

func TestDisconnectCodes(t *testing.T) {
	t.Parallel()
	cs := make(codes, 2)
	a := newApp(t, ginws.Config{}, func() ginws.Consumer { return &echo{codes: cs} })
	ctx := testCtx(t)
	c1 := a.ts.Communicator("/ws/x")
	c1.MustConnect(ctx)
	if err := c1.DisconnectWith(ctx, 4321, "going"); err != nil {
		t.Fatal(err)
	}
	if code := cs.wait(t); code != 4321 {
		t.Fatalf("client close 4321 → Disconnect(%d)", code)
	}
	c2 := a.ts.Communicator("/ws/x")
	c2.MustConnect(ctx)
	c2.Abort()
	if code := cs.wait(t); code != websocket.CloseAbnormalClosure {
		t.Fatalf("vanished client → Disconnect(%d), want 1006", code)
	}
}

// lastWords handles frames slowly, so some are still queued when the client closes.
type lastWords struct {
	ginws.WebsocketConsumer
	got chan string
}

func (l *lastWords) Receive(ctx context.Context, f ginws.ClientMessage) error {
	time.Sleep(2 * time.Millisecond)
	l.got <- f.Text()
	return nil
}

func TestFramesBeforeCloseAreHandled(t *testing.T) {
	t.Parallel()
	got := make(chan string, 100)
	a := newApp(t, ginws.Config{}, func() ginws.Consumer { return &lastWords{got: got} })
	ctx := testCtx(t)
	comm := a.ts.Communicator("/ws/x")
	comm.MustConnect(ctx)
	for i := 0; i < 20; i++ {
		if err := comm.SendText(ctx, "m"); err != nil {
			t.Fatal(err)
		}
	}
	if err := comm.SendText(ctx, "bye"); err != nil {
		t.Fatal(err)
	}
	if err := comm.Disconnect(ctx); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 21; i++ {
		select {
		case s := <-got:
			if i == 20 && s != "bye" {
				t.Fatalf("last frame %q", s)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("only %d of 21 frames were handled after the client closed", i)
		}
	}
}

type slowDisconnect struct {
	ginws.WebsocketConsumer
	done *atomic.Int32
}

func (s *slowDisconnect) Disconnect(ctx context.Context, code int) {
	if code == ginws.CloseGoingAway {
		time.Sleep(50 * time.Millisecond) // e.g. saving state
		s.done.Add(1)
	}
}

func TestGracefulShutdown(t *testing.T) {
	t.Parallel()
	var done atomic.Int32
	srv := ginws.New(ginws.Config{Logger: discard()})
	r := gin.New()
	r.GET("/ws/:room", srv.Mount(func() ginws.Consumer { return &slowDisconnect{done: &done} }))
	ts := wstest.NewServer(t, r)
	ctx := testCtx(t)
	const n = 20
	comms := make([]*wstest.Communicator, n)
	for i := range comms {
		comms[i] = ts.Communicator("/ws/x")
		comms[i].MustConnect(ctx)
	}
	hs := &http.Server{}
	hs.RegisterOnShutdown(srv.OnShutdown)
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if got := done.Load(); got != n {
		t.Fatalf("Shutdown returned after %d of %d Disconnect handlers", got, n)
	}
	for _, c := range comms {
		code, reason, err := c.WaitClosed(ctx)
		if err != nil || code != websocket.CloseGoingAway || reason != "server shutting down" {
			t.Fatalf("client saw %d %q %v, want 1001", code, reason, err)
		}
	}
	res, err := ts.Communicator("/ws/x").Connect(ctx)
	if err != nil || res.Status != http.StatusServiceUnavailable {
		t.Fatalf("handshake after shutdown: %+v %v, want 503", res, err)
	}
	if st := srv.Stats(); st.Open != 0 || st.Disconnected != n {
		t.Fatalf("stats after shutdown: %+v", st)
	}
}

// TestShutdownDeadlineCutsOffStuckClients: a client that never answers the close handshake is cut
// off when Shutdown's context ends.
func TestShutdownDeadlineCutsOffStuckClients(t *testing.T) {
	t.Parallel()
	cs := make(codes, 1)
	srv := ginws.New(ginws.Config{Logger: discard(), CloseTimeout: time.Minute})
	r := gin.New()
	r.GET("/ws/:room", srv.Mount(func() ginws.Consumer { return &echo{codes: cs} }))
	ts := wstest.NewServer(t, r)
	ctx := testCtx(t)
	raw, _, err := websocket.DefaultDialer.DialContext(ctx, ts.WSURL("/ws/x"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	if err := srv.Shutdown(short); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Shutdown = %v, want the deadline", err)
	}
	if code := cs.wait(t); code != ginws.CloseGoingAway {
		t.Fatalf("Disconnect(%d), want 1001", code)
	}
	if err := srv.Wait(ctx); err != nil {
		t.Fatal(err)
	}
}

// counting relays chat events with RelayJSON.
var relayBuilds atomic.Int32

var relayChat = ginws.RelayJSON(func(ev layer.Message) (any, error) {
	relayBuilds.Add(1)
	return map[string]any{"message": ev["message"]}, nil
})

type relayer struct{ ginws.WebsocketConsumer }

func (r *relayer) Groups() []string { return []string{"relay"} }

func (r *relayer) Events() ginws.Events { return ginws.Events{"chat.message": relayChat} }

func TestRelayJSONEncodesOncePerGroupSend(t *testing.T) {
	t.Parallel()
	lay := layer.NewMemory(layer.MemoryConfig{})
	a := newApp(t, ginws.Config{Layer: lay}, func() ginws.Consumer { return &relayer{} })
	ctx := testCtx(t)
	comms := make([]*wstest.Communicator, 5)
	for i := range comms {
		comms[i] = a.ts.Communicator("/ws/x")
		comms[i].MustConnect(ctx)
	}
	relayBuilds.Store(0)
	for i := 0; i < 3; i++ {
		if err := lay.GroupSend(ctx, "relay", layer.Message{"type": "chat.message", "message": "m"}); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range comms {
		for i := 0; i < 3; i++ {
			var got map[string]string
			if err := c.ReceiveJSON(ctx, &got); err != nil || got["message"] != "m" {
				t.Fatalf("relayed frame: %v %v", got, err)
			}
		}
	}
	if n := relayBuilds.Load(); n != 3 {
		t.Fatalf("build ran %d times for 3 group sends to 5 members, want 3", n)
	}
	// Called outside a connection, a relay handler reports a clear error.
	if err := relayChat(context.Background(), layer.Message{"type": "chat.message"}); err == nil {
		t.Fatal("a relay handler outside a connection must fail")
	}
}

// pollOnly hides the layer's Subscriber, forcing the polling path.
type pollOnly struct{ layer.Layer }

func TestLayerWithoutSubscriber(t *testing.T) {
	t.Parallel()
	lay := pollOnly{layer.NewMemory(layer.MemoryConfig{})}
	cs := make(codes, 1)
	a := newApp(t, ginws.Config{Layer: lay}, chatRoom(cs))
	ctx := testCtx(t)
	comm := a.ts.Communicator("/ws/lobby")
	comm.MustConnect(ctx)
	if got := recvText(t, comm); got != "chat:joined" {
		t.Fatalf("got %q", got)
	}
	if err := comm.SendText(ctx, "polled"); err != nil {
		t.Fatal(err)
	}
	if got := recvText(t, comm); got != "chat:polled" {
		t.Fatalf("got %q", got)
	}
	if err := comm.Disconnect(ctx); err != nil {
		t.Fatal(err)
	}
	cs.wait(t)
}

func TestSendAfterCloseAndInvalidCloseCode(t *testing.T) {
	t.Parallel()
	errs := make(chan error, 4)
	srv := ginws.New(ginws.Config{Logger: discard()})
	r := gin.New()
	r.GET("/ws", srv.Mount(func() ginws.Consumer { return &closingConsumer{errs: errs} }))
	ts := wstest.NewServer(t, r)
	ctx := testCtx(t)
	comm := ts.Communicator("/ws")
	comm.MustConnect(ctx)
	if code := waitClosed(t, comm); code != 4000 {
		t.Fatalf("close %d", code)
	}
	if err := <-errs; err == nil {
		t.Fatal("Close(1006) must be refused: 1006 may not be sent")
	}
	if err := <-errs; !errors.Is(err, ginws.ErrClosed) {
		t.Fatalf("send after Close: %v, want ErrClosed", err)
	}
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
}

type closingConsumer struct {
	ginws.WebsocketConsumer
	errs chan error
}

func (c *closingConsumer) Connect(ctx context.Context) error {
	if err := c.Accept(); err != nil {
		return err
	}
	c.errs <- c.Close(1006, "not allowed")
	if err := c.Close(4000, "done"); err != nil {
		return err
	}
	c.errs <- c.SendText("too late")
	return nil
}

func TestLargeReasonIsTruncated(t *testing.T) {
	t.Parallel()
	srv := ginws.New(ginws.Config{Logger: discard()})
	r := gin.New()
	long := strings.Repeat("é", 100) // 200 bytes: over the 123 a close frame can carry
	r.GET("/ws", srv.Mount(func() ginws.Consumer { return &reasonCloser{reason: long} }))
	ts := wstest.NewServer(t, r)
	ctx := testCtx(t)
	comm := ts.Communicator("/ws")
	comm.MustConnect(ctx)
	code, reason, err := comm.WaitClosed(ctx)
	if err != nil || code != 4002 || len(reason) > 123 || !strings.HasPrefix(long, reason) {
		t.Fatalf("close %d %q (%d bytes) %v", code, reason, len(reason), err)
	}
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
}

type reasonCloser struct {
	ginws.WebsocketConsumer
	reason string
}

func (r *reasonCloser) Connect(ctx context.Context) error {
	if err := r.Accept(); err != nil {
		return err
	}
	return r.Close(4002, r.reason)
}

func TestSendJSONErrorIsReported(t *testing.T) {
	t.Parallel()
	srv := ginws.New(ginws.Config{Logger: discard()})
	r := gin.New()
	errs := make(chan error, 1)
	r.GET("/ws", srv.Mount(func() ginws.Consumer { return &badJSON{errs: errs} }))
	ts := wstest.NewServer(t, r)
	ctx := testCtx(t)
	ts.Communicator("/ws").MustConnect(ctx)
	var ue *json.UnsupportedTypeError
	if err := <-errs; !errors.As(err, &ue) {
		t.Fatalf("SendJSON(chan) = %v, want a json error", err)
	}
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
}

type badJSON struct {
	ginws.WebsocketConsumer
	errs chan error
}

func (b *badJSON) Connect(ctx context.Context) error {
	if err := b.Accept(); err != nil {
		return err
	}
	b.errs <- b.SendJSON(make(chan int))
	return nil
}
