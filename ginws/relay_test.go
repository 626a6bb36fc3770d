package ginws_test

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gin-gonic/gin"

	"ginws.dev/ginws"
	"ginws.dev/ginws/layer"
	"ginws.dev/ginws/wstest"
)

// relayOrder mixes a relay handler ("relay.item") with an ordinary one ("plain.item") and with
// client messages, each answered with one frame, so that the frames' order shows whether relay
// events ever overtake what was queued before them.
type relayOrder struct {
	ginws.WebsocketConsumer
	names chan<- string
}

var orderRelay = ginws.RelayJSON(func(ev layer.Message) (any, error) { return ev["n"], nil })

func (r *relayOrder) Connect(ctx context.Context) error {
	if err := r.Accept(); err != nil {
		return err
	}
	r.names <- r.ChannelName()
	// An event arriving while Connect still runs is handled after it: "connected" comes first.
	if err := r.Layer().Send(ctx, r.ChannelName(), layer.Message{"type": "relay.item", "n": "during-connect"}); err != nil {
		return err
	}
	return r.SendText(`"connected"`)
}

func (r *relayOrder) Receive(ctx context.Context, m ginws.ClientMessage) error {
	return r.SendText(`"` + m.Text() + `"`)
}

func (r *relayOrder) Events() ginws.Events {
	return ginws.Events{
		"relay.item": orderRelay,
		"plain.item": func(ctx context.Context, ev layer.Message) error {
			n, _ := ev.Str("n")
			return r.SendText(`"` + n + `"`)
		},
	}
}

// TestRelayFastPathKeepsOrder sends relay events, ordinary events and client messages to one
// connection from three goroutines, and checks that each source's frames arrive in its order, that
// the relay events arrive after Connect's own frames, and that most relay events took the fast
// path.
func TestRelayFastPathKeepsOrder(t *testing.T) {
	t.Parallel()
	lay := layer.NewMemory(layer.MemoryConfig{Capacity: 10000})
	names := make(chan string, 1)
	a := newApp(t, ginws.Config{Layer: lay}, func() ginws.Consumer { return &relayOrder{names: names} })
	ctx := testCtx(t)
	comm := a.ts.Communicator("/ws/x")
	comm.MustConnect(ctx)
	channel := <-names
	if got := recvText(t, comm); got != `"connected"` {
		t.Fatalf("first frame %s, want Connect's", got)
	}
	if got := recvText(t, comm); got != `"during-connect"` {
		t.Fatalf("second frame %s, want the event sent during Connect", got)
	}

	const n = 2000
	var wg sync.WaitGroup
	wg.Add(3)
	send := func(typ, prefix string) {
		defer wg.Done()
		for i := range n {
			if err := lay.Send(ctx, channel, layer.Message{"type": typ, "n": fmt.Sprintf("%s%d", prefix, i)}); err != nil {
				t.Error(err)
				return
			}
		}
	}
	go send("relay.item", "r")
	go send("plain.item", "p")
	go func() {
		defer wg.Done()
		for i := range n {
			if err := comm.SendText(ctx, fmt.Sprintf("c%d", i)); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	next := map[byte]int{'r': 0, 'p': 0, 'c': 0}
	for range 3 * n {
		s := strings.Trim(recvText(t, comm), `"`)
		var i int
		if _, err := fmt.Sscanf(s[1:], "%d", &i); err != nil {
			t.Fatalf("frame %q", s)
		}
		if i != next[s[0]] {
			t.Fatalf("frame %q out of order: want %c%d", s, s[0], next[s[0]])
		}
		next[s[0]]++
	}
	wg.Wait()
	t.Logf("%d of %d relay events took the fast path", ginws.Relayed(a.srv), n+1)
	// Every frame is in. The handler that queued the last of them may still be returning, so a
	// relay event can take the handler's way once more; after that the connection is idle and the
	// next one takes the fast path.
	awaitFastPath(t, a.srv, func() {
		if err := lay.Send(ctx, channel, layer.Message{"type": "relay.item", "n": "last"}); err != nil {
			t.Fatal(err)
		}
		if got := recvText(t, comm); got != `"last"` {
			t.Fatalf("got %s, want the last relay event", got)
		}
	})
}

// awaitFastPath calls relayOne, which relays one event and reads its frame, until an event takes
// the fast path, and fails the test after 100 that did not. A client that has read a frame knows
// the frame was queued, not that the handler or Connect that queued it has returned; until it has,
// relay events take the handler's way. Nothing else runs on an idle connection, so once one event
// takes the fast path the next does too: what follows can count on it.
func awaitFastPath(t *testing.T, srv *ginws.Server, relayOne func()) {
	t.Helper()
	for try := 1; ; try++ {
		before := ginws.Relayed(srv)
		relayOne()
		switch got := ginws.Relayed(srv) - before; {
		case got == 1:
			return
		case got > 1:
			t.Fatalf("one relay event took the fast path %d times", got)
		case try == 100:
			t.Fatal("100 relay events to an idle connection took the handler's way, none the fast path")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// relayFailing's relay fails or panics on demand.
type relayFailing struct{ ginws.WebsocketConsumer }

var failingRelay = ginws.RelayJSON(func(ev layer.Message) (any, error) {
	switch ev["do"] {
	case "fail":
		return nil, errors.New("cannot build")
	case "panic":
		panic("build blew up")
	case "closed":
		return nil, ginws.ErrClosed // build's own error, though it names the connection's state
	}
	return ev["n"], nil
})

func (r *relayFailing) Groups() []string { return []string{"failing"} }

func (r *relayFailing) Events() ginws.Events { return ginws.Events{"item": failingRelay} }

// TestRelayBuildFailureCloses: a relay whose build fails or panics closes every member with 1011
// after the frames before it, logs why, and the process goes on serving. A build that returns
// ErrClosed fails like any other: that error is build's own, not the connection's state.
func TestRelayBuildFailureCloses(t *testing.T) {
	t.Parallel()
	for _, do := range []string{"fail", "panic", "closed"} {
		t.Run(do, func(t *testing.T) {
			t.Parallel()
			lay := layer.NewMemory(layer.MemoryConfig{})
			a := newApp(t, ginws.Config{Layer: lay}, func() ginws.Consumer { return &relayFailing{} })
			ctx := testCtx(t)
			comms := make([]*wstest.Communicator, 3)
			for i := range comms {
				comms[i] = a.ts.Communicator("/ws/x")
				comms[i].MustConnect(ctx)
			}
			for _, m := range []layer.Message{{"type": "item", "n": 1}, {"type": "item", "do": do}, {"type": "item", "n": 3}} {
				if err := lay.GroupSend(ctx, "failing", m); err != nil {
					t.Fatal(err)
				}
			}
			for _, c := range comms {
				if got := recvText(t, c); got != "1" {
					t.Fatalf("first frame %q, want 1", got)
				}
				code, _, err := c.WaitClosed(ctx)
				if err != nil || code != ginws.CloseInternalError {
					t.Fatalf("closed with %d (%v), want 1011", code, err)
				}
			}
			want := "handler failed"
			if do == "panic" {
				want = "handler panicked"
			}
			a.logs.waitFor(t, want)
			if a.srv.Stats().HandlerErrors != uint64(len(comms)) {
				t.Fatalf("HandlerErrors %d, want %d", a.srv.Stats().HandlerErrors, len(comms))
			}
			// The server still serves.
			c := a.ts.Communicator("/ws/x")
			c.MustConnect(ctx)
			if err := lay.GroupSend(ctx, "failing", layer.Message{"type": "item", "n": 4}); err != nil {
				t.Fatal(err)
			}
			if got := recvText(t, c); got != "4" {
				t.Fatalf("after the failure: %q, want 4", got)
			}
		})
	}
}

// relayBig relays each event's body as a frame of its own: [n, body].
type relayBig struct {
	ginws.WebsocketConsumer
	names chan<- string
}

var bigRelay = ginws.RelayJSON(func(ev layer.Message) (any, error) { return []any{ev["n"], ev["body"]}, nil })

func (r *relayBig) Connect(ctx context.Context) error {
	if err := r.Accept(); err != nil {
		return err
	}
	r.names <- r.ChannelName()
	return nil
}

func (r *relayBig) Events() ginws.Events { return ginws.Events{"big": bigRelay} }

// smallBuffers shrinks the send buffer of every socket it accepts, so that a client that stops
// reading blocks the server's writes after a few frames, not after megabytes.
type smallBuffers struct{ net.Listener }

func (l smallBuffers) Accept() (net.Conn, error) {
	nc, err := l.Listener.Accept()
	if tc, ok := nc.(*net.TCPConn); ok {
		_ = tc.SetWriteBuffer(8 << 10)
	}
	return nc, err
}

// smallBufferApp serves factory's consumers on lay at /ws/:room through a listener whose sockets
// have small send buffers (smallBuffers), shuts it down and checks its state machine when the
// test ends, as newApp does, and connects one raw client to /ws/x. The client's receive buffer is
// left alone: shrunk after the connection is made, it would drop what the window already allowed,
// and loopback retransmits take seconds. It starts at the system's default (tcp_rmem's, 128 KB)
// and grows only as the client reads.
func smallBufferApp(t *testing.T, lay layer.Layer, factory func() ginws.Consumer) (*ginws.Server, *rawClient) {
	t.Helper()
	srv := ginws.New(ginws.Config{Layer: lay, Logger: discard()})
	r := gin.New()
	r.GET("/ws/:room", srv.Mount(factory))
	ts := httptest.NewUnstartedServer(r)
	ts.Listener = smallBuffers{ts.Listener}
	ts.Start()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		ts.Close()
		if n := ginws.BadTransitions(srv); n != 0 {
			t.Errorf("the connection state machine refused %d transitions", n)
		}
	})
	return srv, dialRaw(t, "ws"+strings.TrimPrefix(ts.URL, "http")+"/ws/x")
}

// TestRelayStalledClientBounded: a relay frame queued before any connection encoded it has no
// known size, so it counts against the event queue's capacity as the event it skipped would have.
// A client that stops reading while 64 KB relay events keep coming must therefore hold a few
// dozen of them, not the thousands that OutboundLimit at 256 bytes of guess apiece would admit;
// and every event the layer accepted is delivered in order once it reads again, unless the
// client was closed as slow (1008), which it is then told.
func TestRelayStalledClientBounded(t *testing.T) {
	t.Parallel()
	const capacity, n = 10, 2000
	lay := layer.NewMemory(layer.MemoryConfig{Capacity: capacity})
	names := make(chan string, 1)
	srv, c := smallBufferApp(t, lay, func() ginws.Consumer { return &relayBig{names: names} })
	channel := <-names
	ctx := testCtx(t)
	// names is sent from Connect, which may still be running: wait until the connection is idle,
	// so that the flood's events take the fast path from the first.
	awaitFastPath(t, srv, func() {
		if err := lay.Send(ctx, channel, layer.Message{"type": "big", "n": -1, "body": ""}); err != nil {
			t.Fatal(err)
		}
		f, err := c.read(5 * time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if string(f.payload) != `[-1,""]` {
			t.Fatalf("got %.40q, want the warm-up event", f.payload)
		}
	})
	relayedBefore := ginws.Relayed(srv)

	body := strings.Repeat("x", 64<<10)
	var accepted []int
	full := 0
	start := time.Now()
	for i := range n {
		// Once the client is judged slow (its handler-way frames over OutboundLimit), the closing
		// connection takes what the layer holds for it and drops it, so the layer accepts every
		// later send: the bound is on what was accepted while the connection was open. A busy
		// machine made the loop last long enough for that (556 accepted in one run).
		if srv.Stats().SlowClients > 0 {
			t.Logf("judged slow after %d sends", i)
			break
		}
		switch err := lay.Send(ctx, channel, layer.Message{"type": "big", "n": i, "body": body}); {
		case err == nil:
			accepted = append(accepted, i)
		case errors.Is(err, layer.ErrChannelFull):
			full++
		default:
			t.Fatal(err)
		}
	}
	relayed := ginws.Relayed(srv) - relayedBefore
	t.Logf("%d events accepted, %d refused as the queue was full, %d took the fast path, in %v", len(accepted), full, relayed, time.Since(start))
	// What the socket's buffers hold (a few frames), the batch whose write is blocked, the relay
	// frames counted against the capacity, the events queued behind them, and what their handlers
	// queued within OutboundLimit (1 MiB: 16 frames).
	if limit := 100; len(accepted) > limit {
		t.Fatalf("%d events were accepted for a client that does not read; want at most %d", len(accepted), limit)
	}
	if relayed == 0 {
		t.Fatal("no event took the fast path")
	}

	got := 0
	for got < len(accepted) {
		f, err := c.read(5 * time.Second)
		if err != nil {
			t.Fatalf("after %d of %d frames, at %v: %v", got, len(accepted), time.Since(start), err)
		}
		if f.op == 0x8 {
			if len(f.payload) < 2 {
				t.Fatalf("a close frame without a code after %d of %d frames", got, len(accepted))
			}
			if code := binary.BigEndian.Uint16(f.payload); code != uint16(ginws.CloseSlowClient) {
				t.Fatalf("closed with %d after %d of %d frames, want %d (slow client)", code, got, len(accepted), ginws.CloseSlowClient)
			}
			t.Logf("closed as slow after %d of %d accepted frames", got, len(accepted))
			return
		}
		var fr []any
		if err := json.Unmarshal(f.payload, &fr); err != nil || len(fr) != 2 {
			t.Fatalf("frame %d: %.40q (%v)", got, f.payload, err)
		}
		if i := int(fr[0].(float64)); i != accepted[got] {
			t.Fatalf("frame %d is event %d, want %d", got, i, accepted[got])
		}
		got++
	}
}

// gapRelay relays [n, body], and fails for an event with do=fail.
var gapRelay = ginws.RelayJSON(func(ev layer.Message) (any, error) {
	if ev["do"] == "fail" {
		return nil, errors.New("cannot build")
	}
	return []any{ev["n"], ev["body"]}, nil
})

type relayGap struct{ relayBig }

func (r *relayGap) Events() ginws.Events { return ginws.Events{"big": gapRelay} }

// TestRelayFailureEndsTheStream: when a relay's build fails, the connection closes with 1011 after
// the frames before the failed event, and no event after it reaches the client — neither those
// queued with it nor one that arrives while the frames before it are still being written. (A gap
// would be worse than the close: a client resuming from the last position it saw would never get
// the failed event's successors that it skipped.)
func TestRelayFailureEndsTheStream(t *testing.T) {
	t.Parallel()
	lay := layer.NewMemory(layer.MemoryConfig{})
	names := make(chan string, 1)
	_, c := smallBufferApp(t, lay, func() ginws.Consumer { return &relayGap{relayBig{names: names}} })
	channel := <-names
	ctx := testCtx(t)
	big := strings.Repeat("x", 600<<10) // more than the socket's buffers hold: its write blocks
	send := func(m layer.Message) {
		t.Helper()
		if err := lay.Send(ctx, channel, m); err != nil {
			t.Fatal(err)
		}
	}
	send(layer.Message{"type": "big", "n": 0, "body": big})
	time.Sleep(50 * time.Millisecond) // the pump is writing 0; what follows waits behind it
	send(layer.Message{"type": "big", "n": 1, "body": big})
	send(layer.Message{"type": "big", "do": "fail"})
	send(layer.Message{"type": "big", "n": 2})
	next := func() serverFrame {
		t.Helper()
		f, err := c.read(5 * time.Second)
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	n := func(f serverFrame) int {
		t.Helper()
		var fr []any
		if f.op != 0x1 || json.Unmarshal(f.payload, &fr) != nil || len(fr) != 2 {
			t.Fatalf("got op %x %.40q, want a relayed event", f.op, f.payload)
		}
		return int(fr[0].(float64))
	}
	if got := n(next()); got != 0 {
		t.Fatalf("first frame: event %d, want 0", got)
	}
	// The pump now encodes 1, the failure and 2, and blocks writing 1. Event 3 arrives meanwhile.
	time.Sleep(100 * time.Millisecond)
	_ = lay.Send(ctx, channel, layer.Message{"type": "big", "n": 3}) // refused or dropped: closing
	if got := n(next()); got != 1 {
		t.Fatalf("second frame: event %d, want 1", got)
	}
	f := next()
	if f.op != 0x8 || len(f.payload) < 2 || binary.BigEndian.Uint16(f.payload) != uint16(ginws.CloseInternalError) {
		t.Fatalf("after event 1: op %x %.40q, want the close frame with 1011 and nothing of events 2 or 3", f.op, f.payload)
	}
}
