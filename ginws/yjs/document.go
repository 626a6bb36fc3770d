package yjs

import (
	"fmt"
	"sync/atomic"

	"ginws.dev/ginws/yjs/yupdate"
)

// document is a room's Yjs document, kept as one merged v1 update plus the updates applied since
// the last merge. Applying an update costs O(update); the O(document) merge runs when the
// unmerged tail has grown (see due) or when the whole document is needed (a joiner's sync, a
// save of the full state) — always outside the room's lock (see room.full), which guards the
// document.
type document struct {
	merged  []byte   // nil: the empty document
	pending [][]byte // validated updates not yet merged, in order
	pendLen int      // total bytes in pending
	gen     uint64   // bumped whenever merged changes, so a merge done outside the lock can be checked

	sv      []byte // state vector of merged at svGen
	svGen   uint64
	svValid bool

	// total is the Server's count of the loaded documents' bytes (Stats.DocumentBytes), kept equal
	// to the sum of their sizes by every change of merged or pending; nil once the room unloaded.
	total *atomic.Int64
}

// size is the document's size bound: what a client would be sent, give or take the merge's savings.
func (d *document) size() int { return len(d.merged) + d.pendLen }

func (d *document) add(update []byte) {
	d.pending = append(d.pending, update)
	d.pendLen += len(update)
	d.count(len(update))
}

// count adds n to the Server's document bytes.
func (d *document) count(n int) {
	if d.total != nil && n != 0 {
		d.total.Add(int64(n))
	}
}

// load sets merged to the document loaded from the store.
func (d *document) load(m []byte) {
	d.count(len(m) - len(d.merged))
	d.merged = m
}

// release takes the document out of the Server's document bytes, at unload.
func (d *document) release() {
	d.count(-d.size())
	d.total = nil
}

// pendingOverhead is what one unmerged update costs besides its bytes (its slice header and
// allocation, its reader in the merge), counted so that a tail of tiny updates is merged too.
const pendingOverhead = 64

// due reports whether the unmerged tail is long enough that merging it now keeps the cost of
// merging proportional to the bytes applied: when it reaches a quarter of the merged document
// (at least 64 KiB), counting each update's bookkeeping. A merge costs O(document), so a trigger
// by count alone would make a large document pay a whole merge for every few hundred keystrokes.
func (d *document) due() bool {
	return d.pendLen+pendingOverhead*len(d.pending) >= max(64<<10, len(d.merged)/4)
}

// parts returns what a merge needs, without modifying the document.
func (d *document) parts() [][]byte {
	parts := make([][]byte, 0, len(d.pending)+1)
	if d.merged != nil {
		parts = append(parts, d.merged)
	}
	return append(parts, d.pending...)
}

// cachedSV returns the state vector of merged, if one was computed for this version and nothing
// was applied since.
func (d *document) cachedSV() ([]byte, bool) {
	if len(d.pending) == 0 && d.svGen == d.gen && d.svValid {
		return d.sv, true
	}
	return nil, false
}

// install replaces merged and the first n pending updates by m, their merge.
func (d *document) install(m []byte, n int) {
	before := d.size()
	defer func() { d.count(d.size() - before) }()
	for _, u := range d.pending[:n] {
		d.pendLen -= len(u)
	}
	rest := copy(d.pending, d.pending[n:])
	clear(d.pending[rest:])
	d.pending = d.pending[:rest]
	d.merged = m
	d.gen++
}

// emptyUpdate is the v1 encoding of an update with no structs and no deletions.
var emptyUpdate = []byte{0, 0}

// mergeUpdates merges updates into one (one is returned as is) and compacts the result: the
// characters a client typed one update each are joined into one item, as a live Yjs document
// joins them, so the document a joiner is sent and the store keeps cost about a byte per
// character rather than eight (see yupdate.Compact). Every fold of the room's tail into its
// document (room.full, room.mergeTail) and every merge for the store goes through here.
func mergeUpdates(parts [][]byte) ([]byte, error) {
	switch len(parts) {
	case 0:
		return nil, nil
	case 1:
		return parts[0], nil
	}
	m, err := yupdate.Merge(parts...)
	if err == nil {
		m, err = yupdate.Compact(m)
	}
	if err != nil {
		return nil, fmt.Errorf("yjs: merge %d updates: %w", len(parts), err)
	}
	return m, nil
}

// orEmpty returns u, or the empty update for a nil document.
func orEmpty(u []byte) []byte {
	if u == nil {
		return emptyUpdate
	}
	return u
}
