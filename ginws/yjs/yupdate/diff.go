package yupdate

import "ginws.dev/ginws/yjs/internal/lib0"

// lib0MaxVarUint is the longest varuint.
const lib0MaxVarUint = 10

// diffBufStart bounds the buffer Diff allocates up front (a whole small update, at most this).
const diffBufStart = 64 << 10

// Diff returns what a peer with the encoded state vector sv lacks from update, like
// Y.diffUpdate: every struct from the peer's clock on (a struct that straddles the clock is cut
// there), and the update's whole delete set, since a state vector says nothing about deletions.
// Unless sv is empty, its buffer starts at diffBufStart at most and grows with what it writes, so
// a small diff of a large document costs little memory.
// Errors wrap ErrMalformed.
func Diff(update, sv []byte) ([]byte, error) {
	state, err := DecodeStateVector(sv)
	if err != nil {
		return nil, err
	}
	var w structWriter
	if len(state) == 0 { // a newcomer: the whole update is the answer
		w.buf = make([]byte, 0, len(update))
	} else {
		w.buf, w.double = make([]byte, 0, min(len(update), diffBufStart)), true
	}
	var r reader
	diffStructs(&w, &r, update, state)
	// Yjs rewrites the delete set sorted by client; one a Yjs peer wrote is sorted already and
	// is copied as it is.
	start := r.d.Pos()
	_, raw, err := r.finish(false)
	if err != nil {
		return nil, err
	}
	out := make([]byte, 0, len(w.buf)+len(w.sections)*(2*lib0MaxVarUint)+len(update)-start+10)
	out = w.finish(out)
	if raw != nil {
		return append(out, raw...), nil
	}
	ds, _, _ := readDeleteSet(lib0.NewDecoder(update[start:]), true)
	return appendDeleteSet(out, ds), nil
}

// diffStructs writes to w the structs of update from the clocks in state on, leaving r at the
// update's delete set (or with an error).
func diffStructs(w *structWriter, r *reader, update []byte, state map[uint64]uint64) {
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
}
