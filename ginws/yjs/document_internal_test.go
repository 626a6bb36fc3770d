package yjs

import "testing"

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
