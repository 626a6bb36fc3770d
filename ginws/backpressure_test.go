package ginws_test

import (
	"bytes"
	"context"
	"errors"
	"net"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gin-gonic/gin"

	"ginws.dev/ginws"
	"ginws.dev/ginws/layer"
)

// A client that floods pings and reads nothing is held back by TCP and cannot grow the server's
// memory: pongs count against OutboundLimit, and the reader stops while a pong waits behind a
// blocked write. (Before: 3 M unread pings grew the server by 626 MB.)
func TestPingFloodIsHeldBack(t *testing.T) {
	// Not parallel: it measures the heap of the whole test process.
	a := newApp(t, ginws.Config{WriteTimeout: 3 * time.Second}, func() ginws.Consumer { return &echo{} })
	c := dialRaw(t, a.ts.WSURL("/ws/x"))

	const total = 3_000_000
	ping := frame(true, 0, 0x9, bytes.Repeat([]byte("p"), 125))
	batch := bytes.Repeat(ping, 1000)
	before := heapInUse()
	sent := 0
	for sent < total {
		_ = c.nc.SetWriteDeadline(time.Now().Add(time.Second))
		if _, err := c.nc.Write(batch); err != nil {
			break // held back (or cut off as slow): the server stopped reading
		}
		sent += 1000
	}
	grown := int64(heapInUse()) - int64(before)
	t.Logf("pings written before the server stopped reading: %d of %d; server heap growth %d KB", sent, total, grown>>10)
	if sent >= total {
		t.Fatalf("the server read all %d pings from a client that reads nothing: no back-pressure", total)
	}
	if grown > 32<<20 {
		t.Fatalf("heap grew by %d MB (limit 32 MB)", grown>>20)
	}
	// The client never reads: the pong write times out and it is closed as slow.
	a.logs.waitFor(t, "closed a slow client")
	if st := a.srv.Stats(); st.SlowClients != 1 {
		t.Fatalf("stats: %+v", st)
	}
}

func heapInUse() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse
}

// handOver accepts and hands itself to the test, which sends from its own goroutine (sends are
// allowed from any goroutine).
type handOver struct {
	ginws.WebsocketConsumer
	ready chan<- *handOver
}

func (h *handOver) Connect(ctx context.Context) error {
	if err := h.Accept(); err != nil {
		return err
	}
	h.ready <- h
	return nil
}

// A slow client gets the 1008 close frame behind the write that was blocked, if it reads again
// within the write timeout; the log says whether the close frame was written.
//
// The order is made, not hoped for: a 12 MB message, more than the kernel buffers of a client
// that reads nothing hold (about 4 MB on loopback), is written first; once the writer has taken it
// (Stats().Writes moves) its write cannot finish, and 4 MB messages then fill the queue past its
// 16 MB limit behind it. (Before, 64 KB messages every millisecond had to outrun the kernel
// buffers, and a starved sender left the client unjudged after 10 s.)
func TestSlowClientGetsItsCloseFrame(t *testing.T) {
	t.Parallel()
	ready := make(chan *handOver, 1)
	a := newApp(t, ginws.Config{OutboundLimit: 16 << 20, WriteTimeout: 60 * time.Second, CloseTimeout: 60 * time.Second},
		func() ginws.Consumer { return &handOver{ready: ready} })
	c := dialRaw(t, a.ts.WSURL("/ws/x"))
	h := <-ready
	writes := a.srv.Stats().Writes
	if err := h.SendBinary(make([]byte, 12<<20)); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for a.srv.Stats().Writes == writes {
		if time.Now().After(deadline) {
			t.Fatal("the 12 MB message was never written")
		}
		time.Sleep(5 * time.Millisecond)
	}
	sent := 0
	for {
		err := h.SendBinary(make([]byte, 4<<20))
		if errors.Is(err, ginws.ErrSlowClient) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if sent++; sent > 4 {
			t.Fatalf("%d messages of 4 MB queued within a 16 MB limit", sent)
		}
	}
	if st := a.srv.Stats(); st.SlowClients != 1 {
		t.Fatalf("stats: %+v", st)
	}
	// Now read: the rest of the 12 MB message, then the close frame; what was queued behind it
	// was dropped.
	data := 0
	for {
		f, err := c.read(30 * time.Second)
		if err != nil {
			t.Fatalf("after %d data frames: %v (the close frame must reach a client that reads)", data, err)
		}
		if f.op == 0x8 {
			if f.closeCode() != ginws.CloseSlowClient || string(f.payload[2:]) != "slow client" {
				t.Fatalf("close frame %d %q", f.closeCode(), f.payload[2:])
			}
			break
		}
		if len(f.payload) != 12<<20 {
			t.Fatalf("data frame of %d bytes, want only the 12 MB one", len(f.payload))
		}
		data++
	}
	if data != 1 {
		t.Fatalf("%d data frames before the close, want the one whose write was under way", data)
	}
	c.write(closeFrame(ginws.CloseSlowClient))
	c.expectClosed(5 * time.Second)
	a.logs.waitFor(t, "close_frame_written=true")
}

// bigSend sends one binary message larger than every kernel buffer between it and a client that
// never reads, so the write that carries it cannot finish.
type bigSend struct{ ginws.WebsocketConsumer }

func (b *bigSend) Connect(ctx context.Context) error {
	if err := b.Accept(); err != nil {
		return err
	}
	return b.SendBinary(make([]byte, 16<<20))
}

// A slow client that never reads again is cut off when the blocked write times out, and the log
// says that no close frame could be written (the client sees 1006, not 1008).
//
// The message is larger than the kernel can buffer (a 4 MB send buffer at most here, and the
// client's receive buffer is pinned at 64 KB), so the write is blocked whatever the scheduler
// does. (A trickle of small messages made this depend on timing: when the writer was not
// scheduled for a few milliseconds, the queue crossed OutboundLimit while the socket still had
// room, and the close frame was written.)
func TestSlowClientThatNeverReadsIsCut(t *testing.T) {
	t.Parallel()
	a := newApp(t, ginws.Config{OutboundLimit: 32 << 20, WriteTimeout: 500 * time.Millisecond},
		func() ginws.Consumer { return &bigSend{} })
	c := dialRaw(t, a.ts.WSURL("/ws/x"))
	if tc, ok := c.nc.(*net.TCPConn); ok {
		_ = tc.SetReadBuffer(64 << 10)
	}
	a.logs.waitFor(t, "close_frame_written=false")
	if !strings.Contains(a.logs.String(), "why=") {
		t.Fatalf("the log must say why: %s", a.logs.String())
	}
	if st := a.srv.Stats(); st.SlowClients != 1 {
		t.Fatalf("stats: %+v", st)
	}
}

// relayMember relays chat events with RelayJSON, accepting with an outbound limit from the room
// name ("big" raises it).
type relayMember struct{ ginws.WebsocketConsumer }

var relayed = ginws.RelayJSON(func(ev layer.Message) (any, error) { return gin.H{"m": ev["m"]}, nil })

func (r *relayMember) Connect(ctx context.Context) error {
	if r.Scope().Param("room") == "big" {
		return r.Accept(ginws.WithOutboundLimit(4 << 20))
	}
	return r.Accept()
}
func (r *relayMember) Groups() []string                { return []string{"room"} }
func (r *relayMember) Events() ginws.Events            { return ginws.Events{"chat.message": relayed} }
func (r *relayMember) Disconnect(context.Context, int) {}

// A group event too large for one member is not a slow client: that member misses it (counted and
// logged with the group and size) and stays connected; members with room for it receive it.
func TestGroupEventTooLargeForOneMember(t *testing.T) {
	t.Parallel()
	lay := layer.NewMemory(layer.MemoryConfig{})
	a := newApp(t, ginws.Config{Layer: lay, OutboundLimit: 64 << 10}, func() ginws.Consumer { return &relayMember{} })
	ctx := testCtx(t)
	small := a.ts.Communicator("/ws/small")
	small.MustConnect(ctx)
	big := a.ts.Communicator("/ws/big")
	big.MustConnect(ctx)

	huge := strings.Repeat("x", 1<<20)
	if err := lay.GroupSend(ctx, "room", layer.Message{"type": "chat.message", "m": huge}); err != nil {
		t.Fatal(err)
	}
	if got := recvText(t, big); len(got) != len(huge)+len(`{"m":""}`) {
		t.Fatalf("the member with room for it got %d bytes", len(got))
	}
	if err := lay.GroupSend(ctx, "room", layer.Message{"type": "chat.message", "m": "small"}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []interface {
		ReceiveText(context.Context) (string, error)
	}{small, big} {
		if got, err := c.ReceiveText(ctx); err != nil || got != `{"m":"small"}` {
			t.Fatalf("after the large event: %q %v (the small member must still be connected)", got, err)
		}
	}
	st := a.srv.Stats()
	if st.TooLarge != 1 || st.SlowClients != 0 {
		t.Fatalf("stats: %+v (want TooLarge 1, SlowClients 0)", st)
	}
	a.logs.waitFor(t, "group=room size=1048594")
}

// A RelayJSON handler may be called from a goroutine the consumer started while the connection
// dispatches group events to the same handler (race-free: go test -race).
type relayFromGoroutine struct {
	ginws.WebsocketConsumer
	wg sync.WaitGroup
}

func (r *relayFromGoroutine) Connect(ctx context.Context) error {
	if err := r.Accept(); err != nil {
		return err
	}
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		for i := range 200 {
			if err := relayed(r.Context(), layer.Message{"type": "chat.message", "m": "own"}); err != nil {
				r.Logger().Error("relay from a goroutine", "i", i, "error", err)
				return
			}
		}
	}()
	return nil
}
func (r *relayFromGoroutine) Groups() []string     { return []string{"room"} }
func (r *relayFromGoroutine) Events() ginws.Events { return ginws.Events{"chat.message": relayed} }
func (r *relayFromGoroutine) Disconnect(context.Context, int) {
	r.wg.Wait()
}

func TestRelayJSONFromAnotherGoroutine(t *testing.T) {
	t.Parallel()
	lay := layer.NewMemory(layer.MemoryConfig{Capacity: 1000})
	a := newApp(t, ginws.Config{Layer: lay}, func() ginws.Consumer { return &relayFromGoroutine{} })
	ctx := testCtx(t)
	c := a.ts.Communicator("/ws/x")
	c.MustConnect(ctx)
	for range 200 {
		if err := lay.GroupSend(ctx, "room", layer.Message{"type": "chat.message", "m": "group"}); err != nil {
			t.Fatal(err)
		}
	}
	counts := map[string]int{}
	for range 400 {
		counts[recvText(t, c)]++
	}
	if counts[`{"m":"own"}`] != 200 || counts[`{"m":"group"}`] != 200 || len(counts) != 2 {
		t.Fatalf("frames: %v", counts)
	}
}
