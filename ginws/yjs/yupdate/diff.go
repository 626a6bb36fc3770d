package yupdate

// Diff returns what a peer with the encoded state vector sv lacks from update, like
// Y.diffUpdate: every struct from the peer's clock on (a struct that straddles the clock is cut
// there), and the update's whole delete set, since a state vector says nothing about deletions.
// Errors wrap ErrMalformed.
func Diff(update, sv []byte) ([]byte, error) {
	state, err := DecodeStateVector(sv)
	if err != nil {
		return nil, err
	}
	var w structWriter
	w.buf = make([]byte, 0, len(update))
	var r reader
	r.reset(update)
	ok := r.next()
	for ok {
		curr := r.cur
		if curr.kind == kindSkip { // a section never starts with a gap
			ok = r.next()
			continue
		}
		known := state[curr.client]
		if curr.end() > known {
			offset := uint64(0)
			if known > curr.clock {
				offset = known - curr.clock
			}
			w.write(&curr, offset)
			// The rest of this client's section follows as it is.
			for ok = r.next(); ok && r.cur.client == curr.client; ok = r.next() {
				w.write(&r.cur, 0)
			}
		} else {
			for ok = r.next(); ok && r.cur.client == curr.client && r.cur.end() <= known; ok = r.next() {
			}
		}
	}
	ds, err := r.finish(true)
	if err != nil {
		return nil, err
	}
	out := make([]byte, 0, len(w.buf)+len(w.sections)*4+len(update)/8+8)
	out = w.finish(out)
	return appendDeleteSet(out, ds), nil
}
