package drain

import (
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
)

// Items from many goroutines are flushed once each, one flush at a time, each goroutine's items in
// the order it queued them.
func TestQueueOrderAndExclusion(t *testing.T) {
	type item struct{ from, seq int }
	var q Queue[item]
	var busy atomic.Bool
	var overlaps atomic.Int32
	var got []item // appended by flush only: one flush at a time, or overlaps counts it
	flush := func(batch []item) {
		if !busy.CompareAndSwap(false, true) {
			overlaps.Add(1)
			return
		}
		runtime.Gosched() // widen the window in which another flush would overlap this one
		got = append(got, batch...)
		busy.Store(false)
	}
	const senders, each = 8, 500
	var wg sync.WaitGroup
	for s := range senders {
		wg.Go(func() {
			for i := range each {
				q.Send([]item{{s, i}}, flush)
			}
		})
	}
	wg.Wait()
	if n := overlaps.Load(); n != 0 {
		t.Fatalf("%d flushes overlapped", n)
	}
	if len(got) != senders*each {
		t.Fatalf("flushed %d items, want %d", len(got), senders*each)
	}
	next := make([]int, senders)
	for _, it := range got {
		if it.seq != next[it.from] {
			t.Fatalf("sender %d: item %d flushed when %d was due", it.from, it.seq, next[it.from])
		}
		next[it.from]++
	}
	if !slices.Equal(next, slices.Repeat([]int{each}, senders)) {
		t.Fatalf("per sender: %v", next)
	}
}

// An empty Send flushes nothing.
func TestQueueEmptySend(t *testing.T) {
	var q Queue[int]
	q.Send(nil, func([]int) { t.Fatal("flushed an empty send") })
}
