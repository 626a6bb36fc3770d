package ginws_test

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/gorilla/websocket"

	"ginws.dev/ginws"
	"ginws.dev/ginws/layer"
)

// BenchmarkMemoryGroupSend measures the in-memory layer's fan-out: one GroupSend to a group of
// subscribed channels, as connections subscribe them. ns/delivery is the cost per member. With
// history=true the group keeps its history (a position per message, the last 100 kept).
func BenchmarkMemoryGroupSend(b *testing.B) {
	for _, tc := range []struct {
		members int
		history bool
	}{{1, false}, {1, true}, {100, false}, {100, true}, {10000, false}, {10000, true}} {
		members := tc.members
		b.Run(fmt.Sprintf("members=%d/history=%v", members, tc.history), func(b *testing.B) {
			ctx := context.Background()
			var cfg layer.MemoryConfig
			if tc.history {
				cfg.History = []layer.HistoryRule{{Pattern: "bench"}}
			}
			lay := layer.NewMemory(cfg)
			var delivered atomic.Int64
			for i := 0; i < members; i++ {
				ch, _ := lay.NewChannel(ctx, "")
				unsub, err := lay.Subscribe(ch, func(*layer.Envelope) error { delivered.Add(1); return nil })
				if err != nil {
					b.Fatal(err)
				}
				defer unsub()
				if err := lay.GroupAdd(ctx, "bench", ch); err != nil {
					b.Fatal(err)
				}
			}
			msg := layer.Message{"type": "chat.message", "message": "hello, room", "user": "ada"}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if err := lay.GroupSend(ctx, "bench", msg); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			if delivered.Load() != int64(b.N)*int64(members) {
				b.Fatalf("delivered %d, want %d", delivered.Load(), b.N*members)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(int64(b.N)*int64(members)), "ns/delivery")
		})
	}
}

// fanoutConsumer relays room messages with RelayJSON, like the chat example.
type fanoutConsumer struct{ ginws.WebsocketConsumer }

func (f *fanoutConsumer) Groups() []string { return []string{"bench"} }

func (f *fanoutConsumer) Events() ginws.Events { return ginws.Events{"chat.message": relayChat} }

// BenchmarkFanOutLoopback measures the whole stack on loopback: a GroupSend to members connected
// over real sockets, each reading every message. The clients share the process, so this is a ratio
// benchmark (compare runs, not machines); the load tool in examples/loadtest measures the server
// alone.
func BenchmarkFanOutLoopback(b *testing.B) {
	for _, members := range []int{10, 100} {
		b.Run(fmt.Sprintf("members=%d", members), func(b *testing.B) {
			lay := layer.NewMemory(layer.MemoryConfig{Capacity: 10000})
			ws := ginws.New(ginws.Config{Layer: lay, Logger: slog.New(slog.DiscardHandler), OutboundLimit: 64 << 20})
			r := gin.New()
			r.GET("/ws", ws.Mount(func() ginws.Consumer { return new(fanoutConsumer) }))
			srv := httptest.NewServer(r)
			defer srv.Close()
			defer ws.Shutdown(context.Background())
			url := "ws" + strings.TrimPrefix(srv.URL, "http") + "/ws"

			var received atomic.Int64
			var wg sync.WaitGroup
			conns := make([]*websocket.Conn, members)
			for i := range conns {
				c, _, err := websocket.DefaultDialer.Dial(url, nil)
				if err != nil {
					b.Fatal(err)
				}
				conns[i] = c
				wg.Add(1)
				go func() {
					defer wg.Done()
					for {
						if _, _, err := c.ReadMessage(); err != nil {
							return
						}
						received.Add(1)
					}
				}()
			}
			for ws.Stats().Open < int64(members) {
				time.Sleep(time.Millisecond)
			}
			ctx := context.Background()
			msg := layer.Message{"type": "chat.message", "message": "hello, room"}
			b.ResetTimer()
			const window = 50 // sends in flight, as a sender waiting for the slowest member would
			for i := 0; i < b.N; i++ {
				for int64(i)-received.Load()/int64(members) > window {
					runtime.Gosched()
				}
				if err := lay.GroupSend(ctx, "bench", msg); err != nil {
					b.Fatal(err)
				}
			}
			want := int64(b.N) * int64(members)
			for received.Load() < want {
				time.Sleep(100 * time.Microsecond)
			}
			b.StopTimer()
			b.ReportMetric(float64(want)/b.Elapsed().Seconds(), "deliveries/s")
			for _, c := range conns {
				c.Close()
			}
			wg.Wait()
			if d := ws.Stats().DroppedEvents; d != 0 {
				b.Fatalf("%d events dropped", d)
			}
		})
	}
}

// BenchmarkIdleConnMemory opens idle connections and reports the Go memory (heap in use plus
// goroutine stacks) each costs the server. Clients are raw TCP sockets that did a handshake by hand,
// so they add little; their share is measured on a plain TCP listener and subtracted.
func BenchmarkIdleConnMemory(b *testing.B) {
	const n = 2000
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		raw := measureConns(b, n, func() (string, func()) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				b.Fatal(err)
			}
			var held []net.Conn
			var mu sync.Mutex
			go func() {
				for {
					c, err := ln.Accept()
					if err != nil {
						return
					}
					mu.Lock()
					held = append(held, c)
					mu.Unlock()
				}
			}()
			return ln.Addr().String(), func() {
				ln.Close()
				mu.Lock()
				for _, c := range held {
					c.Close()
				}
				mu.Unlock()
			}
		}, false)
		full := measureConns(b, n, func() (string, func()) {
			ws := ginws.New(ginws.Config{Logger: slog.New(slog.DiscardHandler)})
			r := gin.New()
			r.GET("/ws", ws.Mount(func() ginws.Consumer { return new(fanoutConsumer) }))
			srv := httptest.NewServer(r)
			return strings.TrimPrefix(srv.URL, "http://"), func() {
				_ = ws.Shutdown(context.Background())
				srv.Close()
			}
		}, true)
		b.ReportMetric(full-raw, "B/conn")
	}
}

// measureConns opens n client sockets to the server start returns and reports Go memory per
// connection (heap in use + stacks), after a GC.
func measureConns(b *testing.B, n int, start func() (addr string, stop func()), handshake bool) float64 {
	before := memNow()
	addr, stop := start()
	defer stop()
	conns := make([]net.Conn, 0, n)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for i := 0; i < n; i++ {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			b.Fatal(err)
		}
		conns = append(conns, c)
		if handshake {
			fmt.Fprintf(c, "GET /ws HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
				"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n", addr)
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
				b.Fatalf("handshake: %v %v", resp, err)
			}
		}
	}
	time.Sleep(100 * time.Millisecond) // let handshake goroutines finish
	after := memNow()
	return (float64(after) - float64(before)) / float64(n) // signed: the GC may free more than n sockets hold
}

func memNow() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse + m.StackInuse
}

// BenchmarkFanOutRawClients is BenchmarkFanOutLoopback with clients that only drain their sockets
// into a fixed buffer (no frame parsing, no allocation), so that nearly all of the process's work is
// the server's: group send, dispatch, RelayJSON, writes. Run it under a deterministic counter to
// compare two revisions of the delivery path on a noisy machine, e.g.
//
//	GODEBUG=asyncpreemptoff=1 valgrind --tool=callgrind ./ginws.test -test.run XXX \
//	    -test.bench FanOutRawClients -test.benchtime 2000x
//
// (instructions per delivery = the total / (sends × members); the kernel's share is not counted).
func BenchmarkFanOutRawClients(b *testing.B) {
	const members = 100
	lay := layer.NewMemory(layer.MemoryConfig{Capacity: 10000})
	ws := ginws.New(ginws.Config{Layer: lay, Logger: slog.New(slog.DiscardHandler), OutboundLimit: 64 << 20})
	r := gin.New()
	r.GET("/ws/:room", ws.Mount(func() ginws.Consumer { return new(fanoutMember) }))
	srv := httptest.NewServer(r)
	defer srv.Close()
	defer ws.Shutdown(context.Background())
	url := "ws" + strings.TrimPrefix(srv.URL, "http") + "/ws/big"

	var received atomic.Int64 // bytes
	var wg sync.WaitGroup
	progress := make(chan struct{}, 1)
	for range members {
		c := dialRaw(b, url)
		c.drainInto(&received, &wg, progress)
	}
	for ws.Stats().Open < members {
		time.Sleep(time.Millisecond)
	}
	ctx := context.Background()
	msg := layer.Message{"type": "chat.message", "m": "hello, room"}
	frame := int64(len(`{"m":"hello, room"}`) + 2)
	cpu0 := processCPU()
	b.ResetTimer()
	const window = 10 // sends ahead of the slowest member, as the load tool's senders
	for i := 0; i < b.N; i++ {
		for int64(i)-received.Load()/(frame*members) > window {
			<-progress // blocks, rather than spins: the process's CPU time is the server's work
		}
		if err := lay.GroupSend(ctx, "all", msg); err != nil {
			b.Fatal(err)
		}
	}
	want := int64(b.N) * members * frame
	for received.Load() < want {
		time.Sleep(100 * time.Microsecond)
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N*members)/b.Elapsed().Seconds(), "deliveries/s")
	b.ReportMetric(float64(processCPU()-cpu0)/float64(b.N*members), "cpu-ns/delivery")
	st := ws.Stats()
	b.ReportMetric(float64(st.Writes)/float64(b.N*members), "writes/delivery")
	ws.Shutdown(context.Background())
	srv.CloseClientConnections()
	wg.Wait()
}
