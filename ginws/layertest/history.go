package layertest

import (
	"sync"
	"testing"
	"time"

	"ginws.dev/ginws/layer"
)

// The history scenarios: positions are assigned in delivery order, a join from a position replays
// what followed it exactly once — also under concurrent sends — and a position the history cannot
// cover is reported as a gap. They run for layers that implement layer.Resumer and
// layer.Subscriber, with Config.History set to historyRules.

// historyPattern is the group pattern the history tests configure; their groups match it.
const historyPattern = "hist.*"

func historyLayer(t *testing.T, newLayer Factory, size int, age time.Duration) (layer.Layer, layer.Resumer, layer.Subscriber) {
	t.Helper()
	l := newLayer(t, Config{History: []layer.HistoryRule{{Pattern: historyPattern, Size: size, Age: age}}})
	r, ok := l.(layer.Resumer)
	if !ok {
		t.Skip("the layer does not implement layer.Resumer (no group history)")
	}
	s, ok := l.(layer.Subscriber)
	if !ok {
		t.Skip("the history tests need layer.Subscriber to see positions")
	}
	return l, r, s
}

// collector subscribes to a new channel and gathers what it receives.
type collector struct {
	mu   sync.Mutex
	envs []*layer.Envelope
	more chan struct{}
	name string
}

func collect(t *testing.T, l layer.Layer, s layer.Subscriber) *collector {
	t.Helper()
	ch, err := l.NewChannel(ctx(t), "")
	if err != nil {
		t.Fatal(err)
	}
	c := &collector{name: ch, more: make(chan struct{}, 1)}
	stop, err := s.Subscribe(ch, func(e *layer.Envelope) error {
		c.mu.Lock()
		c.envs = append(c.envs, e)
		c.mu.Unlock()
		select {
		case c.more <- struct{}{}:
		default:
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	return c
}

// wait returns the first n envelopes, failing the test if they do not come.
func (c *collector) wait(t *testing.T, n int) []*layer.Envelope {
	t.Helper()
	deadline := time.After(wait)
	for {
		c.mu.Lock()
		got := append([]*layer.Envelope(nil), c.envs...)
		c.mu.Unlock()
		if len(got) >= n {
			return got
		}
		select {
		case <-c.more:
		case <-deadline:
			t.Fatalf("%s received %d messages, want %d", c.name, len(got), n)
		}
	}
}

func sendN(t *testing.T, l layer.Layer, group string, from, to int) {
	t.Helper()
	for i := from; i <= to; i++ {
		if err := l.GroupSend(ctx(t), group, layer.Message{"type": "hist.msg", "n": i}); err != nil {
			t.Fatal(err)
		}
	}
}

// wantOffsets checks that envs carry the messages from..to with offsets from..to of one epoch.
func wantOffsets(t *testing.T, envs []*layer.Envelope, from int, epoch string) {
	t.Helper()
	for i, e := range envs {
		want := from + i
		n, _ := e.Message.Int("n")
		if e.Position.Offset != uint64(want) || n != int64(want) || (epoch != "" && e.Position.Epoch != epoch) {
			t.Fatalf("message %d: n=%d at %v, want n=%d at offset %d of epoch %q", i, n, e.Position, want, want, epoch)
		}
	}
}

func testHistoryPositions(t *testing.T, newLayer Factory) {
	l, _, s := historyLayer(t, newLayer, 0, 0)
	group, plain := unique(t, "hist.pos"), unique(t, "nohist")
	a := collect(t, l, s)
	for _, g := range []string{group, plain} {
		if err := l.GroupAdd(ctx(t), g, a.name); err != nil {
			t.Fatal(err)
		}
	}
	sendN(t, l, group, 1, 5)
	got := a.wait(t, 5)
	if got[0].Position.Epoch == "" {
		t.Fatal("a message of a group with history has no epoch")
	}
	wantOffsets(t, got, 1, got[0].Position.Epoch)
	if err := l.GroupSend(ctx(t), plain, layer.Message{"type": "plain"}); err != nil {
		t.Fatal(err)
	}
	if e := a.wait(t, 6)[5]; !e.Position.IsZero() {
		t.Fatalf("a message of a group without history has position %v", e.Position)
	}
	p, err := layer.ParsePosition(got[2].Position.String())
	if err != nil || p != got[2].Position {
		t.Fatalf("ParsePosition(%q) = %v, %v", got[2].Position.String(), p, err)
	}
}

func testHistoryResume(t *testing.T, newLayer Factory) {
	l, r, s := historyLayer(t, newLayer, 0, 0)
	group := unique(t, "hist.resume")
	a := collect(t, l, s)
	if err := l.GroupAdd(ctx(t), group, a.name); err != nil {
		t.Fatal(err)
	}
	sendN(t, l, group, 1, 5)
	seen := a.wait(t, 5)
	epoch := seen[0].Position.Epoch

	b := collect(t, l, s)
	rec, err := r.GroupAddSince(ctx(t), group, b.name, seen[1].Position)
	if err != nil {
		t.Fatal(err)
	}
	if rec.Gap || rec.Replayed != 3 || rec.Last != seen[4].Position {
		t.Fatalf("GroupAddSince after offset 2 of 5 = %+v, want no gap, 3 replayed, last %v", rec, seen[4].Position)
	}
	sendN(t, l, group, 6, 6) // then live
	wantOffsets(t, b.wait(t, 4), 3, epoch)

	// From the newest position: nothing to replay, no gap. From zero: nothing, and the position.
	c := collect(t, l, s)
	if rec, err := r.GroupAddSince(ctx(t), group, c.name, layer.Position{Epoch: epoch, Offset: 6}); err != nil || rec.Gap || rec.Replayed != 0 {
		t.Fatalf("GroupAddSince at the newest position = %+v, %v", rec, err)
	}
	d := collect(t, l, s)
	if rec, err := r.GroupAddSince(ctx(t), group, d.name, layer.Position{}); err != nil || rec.Gap || rec.Replayed != 0 || rec.Last.Offset != 6 || rec.Last.Epoch != epoch {
		t.Fatalf("GroupAddSince from zero = %+v, %v; want last offset 6", rec, err)
	}
	sendN(t, l, group, 7, 7)
	wantOffsets(t, c.wait(t, 1), 7, epoch)
	wantOffsets(t, d.wait(t, 1), 7, epoch)

	// A fresh group: the position to resume from has offset 0, and resuming from it loses nothing.
	fresh := unique(t, "hist.fresh")
	e := collect(t, l, s)
	rec, err = r.GroupAddSince(ctx(t), fresh, e.name, layer.Position{})
	if err != nil || rec.Last.Epoch == "" || rec.Last.Offset != 0 {
		t.Fatalf("GroupAddSince on a fresh group = %+v, %v; want an epoch and offset 0", rec, err)
	}
	sendN(t, l, fresh, 1, 2)
	f := collect(t, l, s)
	if rec, err := r.GroupAddSince(ctx(t), fresh, f.name, rec.Last); err != nil || rec.Gap || rec.Replayed != 2 {
		t.Fatalf("GroupAddSince from offset 0 = %+v, %v; want 2 replayed", rec, err)
	}
	wantOffsets(t, f.wait(t, 2), 1, rec.Last.Epoch)
}

// testHistoryResumeConcurrent joins from a position while another goroutine keeps sending: the
// joiner must get every message after the position exactly once, in order.
func testHistoryResumeConcurrent(t *testing.T, newLayer Factory) {
	l, r, s := historyLayer(t, newLayer, 1000, 0)
	group := unique(t, "hist.race")
	a := collect(t, l, s)
	if err := l.GroupAdd(ctx(t), group, a.name); err != nil {
		t.Fatal(err)
	}
	const total = 400
	sent := make(chan error, 1)
	go func() {
		for i := 1; i <= total; i++ {
			if err := l.GroupSend(ctx(t), group, layer.Message{"type": "hist.msg", "n": i}); err != nil {
				sent <- err
				return
			}
		}
		sent <- nil
	}()
	var joiners []*collector
	var froms []int
	for _, at := range []int{20, 100, 200} {
		seen := a.wait(t, at)
		b := collect(t, l, s)
		if _, err := r.GroupAddSince(ctx(t), group, b.name, seen[at-1].Position); err != nil {
			t.Fatal(err)
		}
		joiners, froms = append(joiners, b), append(froms, at+1)
	}
	if err := <-sent; err != nil {
		t.Fatal(err)
	}
	epoch := a.wait(t, total)[0].Position.Epoch
	for i, b := range joiners {
		got := b.wait(t, total-froms[i]+1)
		wantOffsets(t, got, froms[i], epoch)
		time.Sleep(50 * time.Millisecond)
		if n := len(b.wait(t, 0)); n != total-froms[i]+1 {
			t.Fatalf("joiner from %d received %d messages, want %d (a duplicate?)", froms[i]-1, n, total-froms[i]+1)
		}
	}
}

func testHistoryGap(t *testing.T, newLayer Factory) {
	l, r, s := historyLayer(t, newLayer, 3, 0)
	group := unique(t, "hist.gap")
	a := collect(t, l, s)
	if err := l.GroupAdd(ctx(t), group, a.name); err != nil {
		t.Fatal(err)
	}
	sendN(t, l, group, 1, 10)
	seen := a.wait(t, 10)
	epoch := seen[0].Position.Epoch
	for _, tc := range []struct {
		name  string
		since layer.Position
	}{
		{"trimmed", seen[1].Position},
		{"other epoch", layer.Position{Epoch: "zz" + epoch, Offset: 9}},
		{"beyond the last", layer.Position{Epoch: epoch, Offset: 99}},
	} {
		b := collect(t, l, s)
		rec, err := r.GroupAddSince(ctx(t), group, b.name, tc.since)
		if err != nil {
			t.Fatal(err)
		}
		if !rec.Gap || rec.Replayed != 3 {
			t.Fatalf("%s: GroupAddSince = %+v, want a gap and the 3 kept messages replayed", tc.name, rec)
		}
		wantOffsets(t, b.wait(t, 3), 8, epoch)
	}
	// The last kept message's predecessor is still covered.
	b := collect(t, l, s)
	if rec, err := r.GroupAddSince(ctx(t), group, b.name, seen[6].Position); err != nil || rec.Gap || rec.Replayed != 3 {
		t.Fatalf("GroupAddSince from offset 7 with 8..10 kept = %+v, %v; want no gap", rec, err)
	}
	// No history for the group: any position is a gap.
	c := collect(t, l, s)
	if rec, err := r.GroupAddSince(ctx(t), unique(t, "nohist"), c.name, seen[8].Position); err != nil || !rec.Gap {
		t.Fatalf("GroupAddSince on a group without history = %+v, %v; want a gap", rec, err)
	}
}

func testHistoryAge(t *testing.T, newLayer Factory) {
	l, r, s := historyLayer(t, newLayer, 0, time.Second)
	group := unique(t, "hist.age")
	a := collect(t, l, s)
	if err := l.GroupAdd(ctx(t), group, a.name); err != nil {
		t.Fatal(err)
	}
	sendN(t, l, group, 1, 2)
	seen := a.wait(t, 2)
	time.Sleep(1500 * time.Millisecond)
	sendN(t, l, group, 3, 3)
	b := collect(t, l, s)
	rec, err := r.GroupAddSince(ctx(t), group, b.name, seen[0].Position)
	if err != nil {
		t.Fatal(err)
	}
	if !rec.Gap || rec.Replayed != 1 {
		t.Fatalf("GroupAddSince past an expired message = %+v, want a gap and 1 replayed", rec)
	}
	wantOffsets(t, b.wait(t, 1), 3, seen[0].Position.Epoch)
}
