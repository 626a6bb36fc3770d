package ginws_test

import (
	"context"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"

	"ginws.dev/ginws"
	"ginws.dev/ginws/layer"
)

// A group send allocates per send, not per delivery: the queues come from pools, the pump runs on
// a parked worker, the frame is encoded once and written from a pooled buffer. Measured as the
// growth of allocations per send between a group of 20 and one of 100 members. (Before the pools,
// every burst grew each member's queues from nothing again: about 2 allocations per delivery.)
func TestFanOutAllocatesPerSendNotPerDelivery(t *testing.T) {
	if testing.Short() {
		t.Skip("short mode")
	}
	const small, members = 20, 100
	lay := layer.NewMemory(layer.MemoryConfig{Capacity: 10000})
	a := newApp(t, ginws.Config{Layer: lay, OutboundLimit: 64 << 20}, func() ginws.Consumer { return new(fanoutMember) })

	// Raw clients that read into a fixed buffer, so that the client side allocates nothing. The
	// first 20 are also in group "small".
	var received atomic.Int64 // bytes
	var wg sync.WaitGroup
	clients := make([]*rawClient, members)
	for i := range clients {
		room := "big"
		if i < small {
			room = "small"
		}
		c := dialRaw(t, a.ts.WSURL("/ws/"+room))
		clients[i] = c
		c.drainInto(&received, &wg, nil)
	}
	t.Cleanup(func() {
		for _, c := range clients {
			c.nc.Close()
		}
		wg.Wait()
	})
	for a.srv.Stats().Open < members {
		runtime.Gosched()
	}
	ctx := context.Background()
	msg := layer.Message{"type": "chat.message", "m": "hello, room"}
	frame := int64(len(`{"m":"hello, room"}`) + 2) // a short text frame: 2 header bytes
	var want int64
	sender := func(group string, n int) func() {
		return func() {
			if err := lay.GroupSend(ctx, group, msg); err != nil {
				t.Fatal(err)
			}
			want += frame * int64(n)
			for received.Load() < want {
				runtime.Gosched()
			}
		}
	}
	toSmall, toAll := sender("small", small), sender("all", members)
	for range 200 { // warm the pools and the workers
		toSmall()
		toAll()
	}
	perSmall := testing.AllocsPerRun(200, toSmall)
	perAll := testing.AllocsPerRun(200, toAll)
	perDelivery := (perAll - perSmall) / (members - small)
	t.Logf("allocations per group send: %.1f to %d members, %.1f to %d: %.3f per delivery (race detector: %v)",
		perSmall, small, perAll, members, perDelivery, raceEnabled)
	limit := 0.02
	if raceEnabled {
		limit = 0.75 // the race detector's sync.Pool drops a quarter of what it is given: ~0.5
	}
	if perDelivery > limit {
		t.Fatalf("%.3f allocations per delivery, want at most %.2f", perDelivery, limit)
	}
}

// fanoutMember is in group "all" and in the group its URL names, and relays chat messages with
// RelayJSON.
type fanoutMember struct{ ginws.WebsocketConsumer }

func (f *fanoutMember) Groups() []string     { return []string{"all", f.Scope().Param("room")} }
func (f *fanoutMember) Events() ginws.Events { return ginws.Events{"chat.message": relayed} }
