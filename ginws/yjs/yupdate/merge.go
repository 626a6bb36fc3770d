package yupdate

import "slices"

// Merge combines v1 updates into one, like Y.mergeUpdates: structs of all inputs, client by
// client in descending order, each client's structs in clock order with duplicates dropped,
// overlaps cut, adjacent GC ranges joined and gaps filled with Skip structs; the delete sets
// united, sorted and joined. Inputs may overlap, repeat, arrive in any order and leave gaps;
// each lists its clients in descending order, each once (Validate), and so does the output.
// The output is byte-for-byte what Yjs 13.6 produces for updates made by Yjs.
//
// Merge() and Merge of only empty updates return the empty update {0, 0}. A single update is
// returned as a copy after validation, as Yjs returns it unchanged. Inputs are not modified and
// the output shares no memory with them. Errors wrap ErrMalformed.
func Merge(updates ...[]byte) ([]byte, error) {
	if len(updates) == 1 {
		if err := Validate(updates[0]); err != nil {
			return nil, err
		}
		return slices.Clone(updates[0]), nil
	}
	size := 0
	for _, u := range updates {
		size += len(u)
	}
	readers := make([]reader, len(updates))
	for i, u := range updates {
		readers[i].reset(u)
	}
	var w structWriter
	w.buf = make([]byte, 0, size)
	mergeStructs(&w, readers)

	// mergeStructs reads every input to its end: what follows is the delete sets.
	sets := make([]deleteSet, len(readers))
	for i := range readers {
		ds, _, err := readers[i].finish(true)
		if err != nil {
			return nil, err
		}
		sets[i] = ds
	}
	ds := mergeDeleteSets(sets)
	out := make([]byte, 0, len(w.buf)+len(w.sections)*(2*lib0MaxVarUint)+10+deleteSetSize(ds))
	out = w.finish(out)
	return appendDeleteSet(out, ds), nil
}

// cursor walks the structs of one update, passing over Skip structs (they only mark gaps).
type cursor struct {
	r    *reader
	more bool
}

// curr is the cursor's struct, nil at the end. It changes with next.
func (c *cursor) curr() *block {
	if c.more {
		return &c.r.cur
	}
	return nil
}

func (c *cursor) next() *block {
	for c.more = c.r.next(); c.more && c.r.cur.kind == kindSkip; c.more = c.r.next() {
	}
	return c.curr()
}

// before orders cursors by their current struct: higher clients first, then lower clocks.
func before(a, b *block) int {
	switch {
	case a.client > b.client:
		return -1
	case a.client < b.client:
		return 1
	case a.clock < b.clock:
		return -1
	case a.clock > b.clock:
		return 1
	}
	return 0
}

// mergeStructs is Yjs's merge loop. Yjs re-sorts all decoders (stably) on every step, but only
// the first one ever advances, so keeping the others sorted and re-inserting the first one in
// front of its equals gives the same order at a fraction of the cost.
func mergeStructs(w *structWriter, readers []reader) {
	all := make([]cursor, len(readers))
	cursors := make([]*cursor, 0, len(readers))
	for i := range readers {
		c := &all[i]
		c.r = &readers[i]
		if c.next() != nil {
			cursors = append(cursors, c)
		}
	}
	slices.SortStableFunc(cursors, func(a, b *cursor) int { return before(a.curr(), b.curr()) })

	var pending block // the struct being built up (Yjs's currWrite)
	havePending := false
	first := true
	for {
		if !first {
			cursors = resort(cursors)
		}
		first = false
		if len(cursors) == 0 {
			break
		}
		cd := cursors[0]
		firstClient := cd.curr().client
		if havePending {
			curr := cd.curr()
			iterated := false
			// Skip what has been written already (higher clients are written first).
			for curr != nil && curr.end() <= pending.end() && curr.client >= pending.client {
				curr = cd.next()
				iterated = true
			}
			if curr == nil || curr.client != firstClient || (iterated && curr.clock > pending.end()) {
				continue
			}
			if firstClient != pending.client {
				w.write(&pending, 0)
				pending = *curr
				cd.next()
			} else if pending.end() < curr.clock {
				// A gap: fill it with a Skip.
				if pending.kind == kindSkip {
					pending.length = curr.end() - pending.clock
				} else {
					w.write(&pending, 0)
					gap := curr.clock - pending.end()
					pending = block{kind: kindSkip, client: firstClient, clock: pending.end(), length: gap}
				}
			} else {
				diff := pending.end() - curr.clock
				next := *curr
				if diff > 0 {
					if pending.kind == kindSkip {
						pending.length -= diff
					} else {
						next = sliceBlock(next, diff)
					}
				}
				if !tryJoin(&pending, &next) {
					w.write(&pending, 0)
					pending = next
					cd.next()
				}
			}
		} else {
			pending = *cd.curr()
			havePending = true
			cd.next()
		}
		for next := cd.curr(); next != nil && next.client == firstClient && next.clock == pending.end() && next.kind != kindSkip; next = cd.next() {
			w.write(&pending, 0)
			pending = *next
		}
	}
	if havePending {
		w.write(&pending, 0)
	}
}

// resort drops the first cursor if it is exhausted, or moves it to its place among the others,
// in front of those that compare equal (where a stable sort leaves it).
func resort(cursors []*cursor) []*cursor {
	c := cursors[0]
	if c.curr() == nil {
		return cursors[1:]
	}
	rest := cursors[1:]
	at, _ := slices.BinarySearchFunc(rest, c, func(e, t *cursor) int {
		if before(e.curr(), t.curr()) < 0 {
			return -1
		}
		return 1
	})
	copy(cursors[:at], rest[:at])
	cursors[at] = c
	return cursors
}

// sliceBlock returns the part of b after its first diff units. An item's left part becomes its
// origin.
func sliceBlock(b block, diff uint64) block {
	b.clock += diff
	b.length -= diff
	if b.kind == kindItem {
		b.hasOrigin = true
		b.origin = id{b.client, b.clock - 1}
		b.cut += diff
	}
	return b
}

// tryJoin appends next to pending when both are GC or both are Skip ranges. Items never join in
// Yjs's merge (their neighbours are unknown there).
func tryJoin(pending, next *block) bool {
	if pending.kind != next.kind || pending.kind == kindItem {
		return false
	}
	pending.length += next.length
	return true
}
