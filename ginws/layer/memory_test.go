package layer_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"ginws.dev/ginws/layer"
	"ginws.dev/ginws/layertest"
)

func TestMemoryLayerConformance(t *testing.T) {
	t.Parallel()
	layertest.Run(t, func(t *testing.T, cfg layertest.Config) layer.Layer {
		l := layer.NewMemory(layer.MemoryConfig{Capacity: cfg.Capacity, Expiry: cfg.Expiry, GroupExpiry: cfg.GroupExpiry, History: cfg.History})
		t.Cleanup(func() { _ = l.Close() })
		return l
	})
}

func TestMemoryLayerPresenceConformance(t *testing.T) {
	t.Parallel()
	layertest.RunPresence(t, func(t *testing.T, cfg layertest.Config) (layer.Layer, layer.Layer) {
		l := layer.NewMemory(layer.MemoryConfig{History: cfg.History})
		t.Cleanup(func() { _ = l.Close() })
		return l, l
	})
}

func TestMemoryLayerChannelCapacityRules(t *testing.T) {
	t.Parallel()
	l := layer.NewMemory(layer.MemoryConfig{
		Capacity:        5,
		ChannelCapacity: []layer.CapacityRule{{Pattern: "http.*", Capacity: 1}},
	})
	ctx := context.Background()
	if got := l.Capacity("http.request"); got != 1 {
		t.Fatalf("Capacity(http.request) = %d, want 1", got)
	}
	if got := l.Capacity("other"); got != 5 {
		t.Fatalf("Capacity(other) = %d, want 5", got)
	}
	if err := l.Send(ctx, "http.request", layer.Message{"type": "a"}); err != nil {
		t.Fatal(err)
	}
	if err := l.Send(ctx, "http.request", layer.Message{"type": "b"}); !errors.Is(err, layer.ErrChannelFull) {
		t.Fatalf("second send to a channel of capacity 1: %v", err)
	}
}

func TestMemoryLayerCountsGroupDrops(t *testing.T) {
	t.Parallel()
	l := layer.NewMemory(layer.MemoryConfig{Capacity: 1})
	ctx := context.Background()
	for _, ch := range []string{"a", "b"} {
		if err := l.GroupAdd(ctx, "g", ch); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < 3; i++ {
		if err := l.GroupSend(ctx, "g", layer.Message{"type": "x"}); err != nil {
			t.Fatal(err)
		}
	}
	if got := l.Stats().Dropped; got != 4 {
		t.Fatalf("Dropped = %d, want 4 (two members, capacity 1, three sends)", got)
	}
}

func TestMemoryLayerForgetsUnusedChannels(t *testing.T) {
	t.Parallel()
	l := layer.NewMemory(layer.MemoryConfig{})
	ctx := context.Background()
	if err := l.Send(ctx, "c", layer.Message{"type": "x"}); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Receive(ctx, "c"); err != nil {
		t.Fatal(err)
	}
	if err := l.GroupAdd(ctx, "g", "d"); err != nil {
		t.Fatal(err)
	}
	if err := l.GroupDiscard(ctx, "g", "d"); err != nil {
		t.Fatal(err)
	}
	unsubscribe, err := l.Subscribe("e", func(*layer.Envelope) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	unsubscribe()
	if st := l.Stats(); st.Channels != 0 || st.Groups != 0 {
		t.Fatalf("after every channel was drained and left: %+v, want no channels or groups", st)
	}
}

func TestMemoryLayerSweepsIdleChannels(t *testing.T) {
	t.Parallel()
	l := layer.NewMemory(layer.MemoryConfig{Expiry: 50 * time.Millisecond})
	ctx := context.Background()
	for _, ch := range []string{"a", "b", "c"} {
		if err := l.Send(ctx, ch, layer.Message{"type": "x"}); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(120 * time.Millisecond)
	// Any later call sweeps expired messages of channels nobody touches again.
	if err := l.Send(ctx, "d", layer.Message{"type": "x"}); err != nil {
		t.Fatal(err)
	}
	if st := l.Stats(); st.Channels != 1 || st.Expired != 3 {
		t.Fatalf("after expiry: %+v, want 1 channel and 3 expired", st)
	}
}

func TestMemoryLayerSubscribeDeliversQueued(t *testing.T) {
	t.Parallel()
	l := layer.NewMemory(layer.MemoryConfig{})
	ctx := context.Background()
	ch, err := l.NewChannel(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	for _, typ := range []string{"one", "two"} {
		if err := l.Send(ctx, ch, layer.Message{"type": typ}); err != nil {
			t.Fatal(err)
		}
	}
	var got []string
	unsubscribe, err := l.Subscribe(ch, func(e *layer.Envelope) error {
		got = append(got, e.Message.Type())
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	defer unsubscribe()
	if len(got) != 2 || got[0] != "one" || got[1] != "two" {
		t.Fatalf("subscriber got %v, want the queued [one two] in order", got)
	}
	if _, err := l.Subscribe(ch, func(*layer.Envelope) error { return nil }); err == nil {
		t.Fatal("a second subscriber on one channel must be refused")
	}
	if _, err := l.Receive(ctx, ch); err == nil {
		t.Fatal("Receive on a subscribed channel must fail")
	}
}

func TestMemoryLayerClosed(t *testing.T) {
	t.Parallel()
	l := layer.NewMemory(layer.MemoryConfig{})
	done := make(chan error, 1)
	go func() {
		_, err := l.Receive(context.Background(), "waiting")
		done <- err
	}()
	time.Sleep(20 * time.Millisecond)
	_ = l.Close()
	if err := <-done; !errors.Is(err, layer.ErrClosed) {
		t.Fatalf("Receive after Close: %v", err)
	}
	if err := l.Send(context.Background(), "x", layer.Message{"type": "x"}); !errors.Is(err, layer.ErrClosed) {
		t.Fatalf("Send after Close: %v", err)
	}
}
