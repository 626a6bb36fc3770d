package ginws_test

import (
	"context"
	"fmt"
	"testing"

	"ginws.dev/ginws"
	"ginws.dev/ginws/layer"
)

// A replay larger than the connection's event queue does not crowd out the live events that
// follow it: they get the queue's whole capacity beside the replay that the pump has not yet
// taken. (Before, every live event that arrived between the replay and the pump's first batch
// was dropped: the queue counted the replay against its capacity.)
func TestReplayLeavesRoomForLiveEvents(t *testing.T) {
	t.Parallel()
	const capacity, missed, live = 10, 40, 5
	lay := layer.NewMemory(layer.MemoryConfig{
		Capacity: capacity,
		History:  []layer.HistoryRule{{Pattern: "news", Size: 100}},
	})
	t.Cleanup(func() { _ = lay.Close() })
	ctx := context.Background()
	if err := lay.GroupSend(ctx, "news", layer.Message{"type": "news.item", "n": 0}); err != nil {
		t.Fatal(err)
	}
	// The position of message 0, as a client that saw it would keep it.
	probe, err := lay.NewChannel(ctx, "probe")
	if err != nil {
		t.Fatal(err)
	}
	rec, err := lay.GroupAddSince(ctx, "news", probe, layer.Position{})
	if err != nil {
		t.Fatal(err)
	}
	seen := rec.Last
	for i := 1; i <= missed; i++ {
		if err := lay.GroupSend(ctx, "news", layer.Message{"type": "news.item", "n": i}); err != nil {
			t.Fatal(err)
		}
	}

	relay := ginws.RelayJSON(func(ev layer.Message) (any, error) { return ev["n"], nil })
	a := newApp(t, ginws.Config{Layer: lay}, consumer(funcConsumer{
		events: func(*funcConsumer) ginws.Events { return ginws.Events{"news.item": relay} },
		connect: func(ctx context.Context, c *funcConsumer) error {
			rec, err := c.GroupAddSince(ctx, "news", seen)
			if err != nil || rec.Gap || rec.Replayed != missed {
				return fmt.Errorf("replay: %+v %v", rec, err)
			}
			// Live events while the replay still waits for the pump, which starts at Accept.
			for i := missed + 1; i <= missed+live; i++ {
				if err := lay.GroupSend(ctx, "news", layer.Message{"type": "news.item", "n": i}); err != nil {
					return err
				}
			}
			return c.Accept()
		},
	}))
	c := a.ts.Communicator("/ws/news")
	c.MustConnect(testCtx(t))
	for want := 1; want <= missed+live; want++ {
		var n int
		if err := c.ReceiveJSON(testCtx(t), &n); err != nil || n != want {
			t.Fatalf("event %d: got %d, %v", want, n, err)
		}
	}
	if st := a.srv.Stats(); st.DroppedEvents != 0 {
		t.Fatalf("dropped %d events", st.DroppedEvents)
	}
}
