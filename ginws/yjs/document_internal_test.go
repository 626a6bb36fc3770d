package yjs

import (
	"sync/atomic"
	"testing"
)

// The merge of a document's tail is due by bytes relative to the document, not after a fixed
// number of updates: a large document is not re-merged every few hundred keystrokes, and a tail
// of tiny updates is still merged once its bookkeeping adds up.
func TestMergeDueScalesWithDocument(t *testing.T) {
	t.Parallel()
	keystroke := make([]byte, 20)
	fill := func(d *document, n int) {
		for range n {
			d.add(keystroke)
		}
	}
	large := document{merged: make([]byte, 8<<20)} // due at 2 MiB of tail
	fill(&large, 1000)
	if large.due() {
		t.Fatal("1000 keystrokes made a merge of an 8 MiB document due")
	}
	fill(&large, 2<<20/(20+pendingOverhead))
	if !large.due() {
		t.Fatal("a tail of a quarter of the document is not due")
	}
	var small document // due at 64 KiB
	per := 20 + pendingOverhead
	fill(&small, (64<<10+per-1)/per-1)
	if small.due() {
		t.Fatal("due before 64 KiB")
	}
	fill(&small, 1)
	if !small.due() {
		t.Fatal("a 64 KiB tail of tiny updates is not due")
	}
}

// The Server's document bytes follow every change of a document: updates applied, a merge
// installed (with updates applied meanwhile left in the tail), a load, and the unload.
func TestDocumentBytes(t *testing.T) {
	t.Parallel()
	var total atomic.Int64
	check := func(d *document, others int64, when string) {
		t.Helper()
		if got, want := total.Load(), int64(d.size())+others; got != want {
			t.Fatalf("%s: total %d, want %d", when, got, want)
		}
	}
	other := document{total: &total}
	other.load(make([]byte, 1000))
	d := document{total: &total}
	d.load(make([]byte, 100))
	check(&d, 1000, "loaded")
	d.add(make([]byte, 10))
	d.add(make([]byte, 20))
	check(&d, 1000, "applied")
	d.add(make([]byte, 5)) // applied while the first two are merged
	d.install(make([]byte, 115), 2)
	check(&d, 1000, "merged")
	if d.pendLen != 5 || len(d.merged) != 115 {
		t.Fatalf("after the merge: tail %d, merged %d", d.pendLen, len(d.merged))
	}
	d.release()
	d.add(make([]byte, 7)) // a late update of an unloaded room is not counted
	if got := total.Load(); got != 1000 {
		t.Fatalf("after the unload: total %d, want 1000", got)
	}
	other.release()
	if got := total.Load(); got != 0 {
		t.Fatalf("all unloaded: total %d", got)
	}
}
