package yupdate

import (
	"fmt"

	"ginws.dev/ginws/yjs/internal/lib0"
)

// reader walks the structs of a v1 update one at a time, as Yjs's lazy struct reader does, so
// that merging, diffing and validating hold one struct per input in memory, whatever the
// update's size. Once next returns false without an error the decoder is positioned at the
// delete set.
type reader struct {
	d             lib0.Decoder
	sections      uint64 // client sections not started yet
	left          uint64 // structs left in the current section
	client, clock uint64
	started       bool  // a section has been read; client is its client
	cur           block // the struct read last; its slices alias the update
	err           error
}

func (r *reader) reset(update []byte) {
	*r = reader{}
	r.d.Reset(update)
	n, err := r.d.ReadVarUint()
	if err != nil {
		r.err = wrap("client count", err)
		return
	}
	// A client section takes at least 3 bytes.
	if n > uint64(r.d.Remaining()/3) {
		r.err = errorf("%d client sections in %d bytes", n, r.d.Remaining())
		return
	}
	r.sections = n
}

// next reads the next struct into r.cur. It returns false at the end of the structs and on an
// error, which it leaves in r.err.
func (r *reader) next() bool {
	if r.err != nil {
		return false
	}
	for r.left == 0 {
		if r.sections == 0 {
			return false
		}
		r.sections--
		if !r.startSection() {
			return false
		}
	}
	b, err := readBlock(&r.d, r.client, r.clock)
	if err != nil {
		r.err = wrap(fmt.Sprintf("struct %d:%d", r.client, r.clock), err)
		return false
	}
	r.left--
	r.clock = b.end()
	r.cur = b
	return true
}

// startSection reads a client section's header. Sections must list clients in descending
// order, each once, as every Yjs encoder writes them (Y.encodeStateAsUpdate, a transaction's
// update, Y.mergeUpdates and Y.diffUpdate of such updates; yrs sorts the same way). Yjs reads a
// client listed twice inconsistently: Y.applyUpdate keeps only its last section, while
// Y.mergeUpdates keeps the first and Y.diffUpdate runs the sections together under new clocks,
// so no merged or diffed form of such an update holds what a peer applying it holds; and the
// order is what lets Merge write each client once (out of order it repeats a client per input).
func (r *reader) startSection() bool {
	var err error
	if r.left, err = r.d.ReadVarUint(); err != nil {
		r.err = wrap("struct count", err)
		return false
	}
	prev := r.client
	if r.client, err = r.d.ReadVarUint(); err != nil {
		r.err = wrap("client", err)
		return false
	}
	if r.started && r.client >= prev {
		r.err = errorf("client %d after client %d: clients must be listed in descending order, each once", r.client, prev)
		return false
	}
	r.started = true
	if r.clock, err = r.d.ReadVarUint(); err != nil {
		r.err = wrap("clock", err)
		return false
	}
	// A struct takes at least 2 bytes.
	if r.left > uint64(r.d.Remaining()/2) {
		r.err = errorf("%d structs of client %d in %d bytes", r.left, r.client, r.d.Remaining())
		return false
	}
	return true
}

// finish reads the delete set after the structs (keeping it only if keep is set) and checks
// that nothing follows it. raw is the delete set's bytes when they are canonical (see
// readDeleteSet), else nil.
func (r *reader) finish(keep bool) (ds deleteSet, raw []byte, err error) {
	if r.err != nil {
		return nil, nil, r.err
	}
	start := r.d.Pos()
	ds, canonical, err := readDeleteSet(&r.d, keep)
	if err != nil {
		return nil, nil, err
	}
	if r.d.Remaining() != 0 {
		return nil, nil, errorf("%d bytes after the delete set", r.d.Remaining())
	}
	if canonical {
		raw = r.d.Since(start)
	}
	return ds, raw, nil
}

// wrap turns a lib0 error into one that wraps ErrMalformed and says where it happened.
func wrap(where string, err error) error {
	return fmt.Errorf("%w: %s: %w", ErrMalformed, where, err)
}
