package redislayer

import (
	"context"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/redis/rueidis"

	"ginws.dev/ginws/layer"
)

func TestCallSlot(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		d    time.Duration
		slot int
	}{
		{0, 0}, {time.Microsecond, 0}, {100 * time.Microsecond, 0},
		{100*time.Microsecond + 1, 1}, {200 * time.Microsecond, 1}, {201 * time.Microsecond, 2},
		{400 * time.Microsecond, 2}, {time.Millisecond, 4}, // 800µs < 1ms ≤ 1.6ms
		{callBucketBase << 15, 15}, {callBucketBase<<15 + 1, callBuckets}, {time.Hour, callBuckets},
	} {
		if got := callSlot(c.d); got != c.slot {
			t.Errorf("callSlot(%v) = %d, want %d", c.d, got, c.slot)
		}
		if c.slot < callBuckets && c.d > callBucketBase<<c.slot {
			t.Errorf("%v is above its bound %v", c.d, callBucketBase<<c.slot)
		}
	}
}

// The histograms count the calls that reach Redis with their durations, cumulative by bound;
// errors are counted, a full channel is not an error.
func TestCallStats(t *testing.T) {
	t.Parallel()
	l := internalLayer(t, Config{Capacity: 1})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ch, err := l.NewChannel(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if err := l.GroupAdd(ctx, "g", ch); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.GroupSend(ctx, "g", layer.Message{"type": "a"}); err != nil {
		t.Fatal(err)
	}
	if err := l.Send(ctx, "direct", layer.Message{"type": "a"}); err != nil {
		t.Fatal(err)
	}
	if err := l.Send(ctx, "direct", layer.Message{"type": "a"}); err != layer.ErrChannelFull {
		t.Fatalf("second send: %v", err)
	}
	if err := l.GroupDiscard(ctx, "g", ch); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Receive(ctx, "direct"); err != nil {
		t.Fatal(err)
	}
	st := l.Stats()
	for op, want := range map[string]uint64{"group_add": 3, "group_send": 1, "send": 2, "group_discard": 1, "receive": 1} {
		cs, ok := st.Calls[op]
		if !ok {
			t.Fatalf("no Calls[%q]", op)
		}
		if cs.Count != want || cs.Errors != 0 || cs.Sum <= 0 {
			t.Errorf("Calls[%q] = count %d, errors %d, sum %v; want count %d, no errors", op, cs.Count, cs.Errors, cs.Sum, want)
		}
		if len(cs.Buckets) != callBuckets {
			t.Errorf("Calls[%q] has %d buckets", op, len(cs.Buckets))
		}
		prev, top := uint64(0), (callBucketBase << (callBuckets - 1)).Seconds()
		for i := range callBuckets {
			n := cs.Buckets[(callBucketBase << i).Seconds()]
			if n < prev || n > cs.Count {
				t.Errorf("Calls[%q] buckets not cumulative: %v", op, cs.Buckets)
			}
			prev = n
		}
		if cs.Buckets[top] > cs.Count {
			t.Errorf("Calls[%q]: %d under the top bound of %d", op, cs.Buckets[top], cs.Count)
		}
	}
}

// A call that fails in Redis (here: nothing listens) is timed and counted as an error.
func TestCallStatsErrors(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	l, err := New(Config{Hosts: []string{"redis://" + addr}, CallTimeout: time.Second, Logger: slog.New(slog.DiscardHandler)})
	if err != nil && l == nil {
		t.Fatal(err)
	}
	defer l.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := l.GroupAdd(ctx, "g", "ch"); err == nil {
		t.Fatal("GroupAdd to a closed port succeeded")
	}
	if cs := l.Stats().Calls["group_add"]; cs.Count != 1 || cs.Errors != 1 {
		t.Errorf("Calls[group_add] = count %d, errors %d; want 1 and 1", cs.Count, cs.Errors)
	}
}

// ReceiveLag is the age of the oldest message of a loop's last pop, and zero after an empty pop.
func TestPopLag(t *testing.T) {
	t.Parallel()
	if got := popLag(nil); got != 0 {
		t.Errorf("empty pop: %v", got)
	}
	old := scoreFloat(time.Now().Add(-3 * time.Second))
	got := popLag([]rueidis.ZScore{{Score: old}, {Score: scoreFloat(time.Now())}})
	if got < 3*time.Second || got > time.Minute {
		t.Errorf("lag of a 3 s old message: %v", got)
	}
	if got := popLag([]rueidis.ZScore{{Score: scoreFloat(time.Now().Add(time.Hour))}}); got != 0 {
		t.Errorf("a message from the future (clock skew): %v", got)
	}
}

// BenchmarkObserve measures what timing a call adds to it (the call's own time.Now is not counted),
// from every core at once: the histograms' slots are shared.
func BenchmarkObserve(b *testing.B) {
	l := &Layer{}
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		var err error
		for pb.Next() {
			l.observe(opGroupSend, start, &err)
		}
	})
}
