package yupdate

// Novel returns the part of update that the document doc (a v1 update, such as a server's merged
// document) does not hold yet, or nil when update adds nothing: the structs of update beyond
// doc's state vector (cut at it, as Diff cuts them), and the deletions of update that doc's
// delete set does not already cover. Applying the result to a document holding doc gives the
// same document as applying update.
//
// A server uses it on a client's sync step 2: Yjs writes its whole delete set into every step 2,
// so a client that reconnects to a document with deletions never sends an empty one, and
// relaying or storing it again would only repeat what every peer has. Novel keeps whatever it
// cannot prove known (a struct beyond a gap in doc, a deletion doc holds only as a GC struct),
// so it may return redundant parts, never drop new ones.
//
// It costs a pass over doc and one over update. Errors (in either input) wrap ErrMalformed.
func Novel(update, doc []byte) ([]byte, error) {
	state, docDS, err := docState(doc)
	if err != nil {
		return nil, err
	}
	w := structWriter{buf: make([]byte, 0, min(len(update), diffBufStart)), double: true}
	var r reader
	diffStructs(&w, &r, update, state)
	ds, _, err := r.finish(true)
	if err != nil {
		return nil, err
	}
	ds = subtractDeleteSet(ds, docDS)
	if len(w.sections) == 0 && ds.empty() {
		return nil, nil
	}
	out := make([]byte, 0, len(w.buf)+len(w.sections)*(2*lib0MaxVarUint)+10+deleteSetSize(ds))
	out = w.finish(out)
	return appendDeleteSet(out, ds), nil
}

// docState returns what doc holds: per client the end of its structs that run without a gap from
// clock 0 (the state vector, as StateVector computes it), and its delete set.
func docState(doc []byte) (map[uint64]uint64, deleteSet, error) {
	state := map[uint64]uint64{}
	var r reader
	r.reset(doc)
	var client, clock uint64
	counting, first := false, true
	for r.next() {
		b := &r.cur
		if first || b.client != client {
			if !first && clock != 0 {
				state[client] = clock
			}
			first = false
			client, clock, counting = b.client, 0, b.clock == 0
		}
		if b.kind == kindSkip {
			counting = false
		}
		if counting {
			clock = b.end()
		}
	}
	ds, _, err := r.finish(true)
	if err != nil {
		return nil, nil, err
	}
	if !first && clock != 0 {
		state[client] = clock
	}
	return state, ds, nil
}

// subtractDeleteSet returns the ranges of ds that known does not cover, per client sorted and
// joined; clients left without ranges are dropped. ds is reused.
func subtractDeleteSet(ds, known deleteSet) deleteSet {
	have := make(map[uint64][]dsRange, len(known))
	for _, c := range known {
		have[c.client] = append(have[c.client], c.ranges...)
	}
	out := ds[:0]
	for _, c := range ds {
		rs := sortAndJoin(c.ranges)
		if k, ok := have[c.client]; ok {
			rs = subtractRanges(rs, sortAndJoin(k))
		}
		if len(rs) > 0 {
			out = append(out, dsClient{client: c.client, ranges: rs})
		}
	}
	return out
}

// subtractRanges returns the parts of rs not covered by known; both are sorted and joined.
func subtractRanges(rs, known []dsRange) []dsRange {
	var out []dsRange
	k := 0
	for _, r := range rs {
		start, end := r.clock, r.clock+r.length
		for k < len(known) && known[k].clock+known[k].length <= start {
			k++
		}
		for j := k; j < len(known) && known[j].clock < end && start < end; j++ {
			kStart, kEnd := known[j].clock, known[j].clock+known[j].length
			if kStart > start {
				out = append(out, dsRange{start, kStart - start})
			}
			start = max(start, kEnd)
		}
		if start < end {
			out = append(out, dsRange{start, end - start})
		}
	}
	return out
}
