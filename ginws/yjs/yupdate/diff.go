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
	p, err := parse(update)
	if err != nil {
		return nil, err
	}
	var w structWriter
	w.buf = make([]byte, 0, len(update))
	blocks := p.blocks
	for i := 0; i < len(blocks); {
		curr := &blocks[i]
		if curr.kind == kindSkip { // a section never starts with a gap
			i++
			continue
		}
		known := state[curr.client]
		if curr.end() > known {
			offset := uint64(0)
			if known > curr.clock {
				offset = known - curr.clock
			}
			w.write(curr, offset)
			// The rest of this client's section follows as it is.
			for i++; i < len(blocks) && blocks[i].client == curr.client; i++ {
				w.write(&blocks[i], 0)
			}
		} else {
			for i < len(blocks) && blocks[i].client == curr.client && blocks[i].end() <= known {
				i++
			}
		}
	}
	out := make([]byte, 0, len(w.buf)+len(w.sections)*4+len(update)/8+8)
	out = w.finish(out)
	return appendDeleteSet(out, p.ds), nil
}
