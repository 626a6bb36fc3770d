package yupdate

import (
	"fmt"

	"ginws.dev/ginws/yjs/internal/lib0"
)

// parsed is a fully read and validated v1 update. Slices alias the update bytes.
type parsed struct {
	blocks []block   // in the order of the update: client sections, each in clock order
	ds     deleteSet // as read: clients in first-seen order, ranges in read order
}

// parse reads a whole v1 update: the struct sections, then the delete set, and nothing after it.
// Every count is checked against the bytes left before anything is allocated for it.
func parse(update []byte) (parsed, error) {
	var p parsed
	d := lib0.NewDecoder(update)
	sections, err := d.ReadVarUint()
	if err != nil {
		return p, wrap("client count", err)
	}
	// A client section takes at least 3 bytes, a struct at least 2.
	if sections > uint64(d.Remaining()/3) {
		return p, errorf("%d client sections in %d bytes", sections, d.Remaining())
	}
	for s := uint64(0); s < sections; s++ {
		n, err := d.ReadVarUint()
		if err != nil {
			return p, wrap("struct count", err)
		}
		client, err := d.ReadVarUint()
		if err != nil {
			return p, wrap("client", err)
		}
		clock, err := d.ReadVarUint()
		if err != nil {
			return p, wrap("clock", err)
		}
		if n > uint64(d.Remaining()/2) {
			return p, errorf("%d structs of client %d in %d bytes", n, client, d.Remaining())
		}
		if p.blocks == nil {
			p.blocks = make([]block, 0, min(n*uint64(sections), uint64(d.Remaining()/2)))
		}
		for i := uint64(0); i < n; i++ {
			b, err := readBlock(d, client, clock)
			if err != nil {
				return p, wrap(fmt.Sprintf("struct %d:%d", client, clock), err)
			}
			p.blocks = append(p.blocks, b)
			clock = b.end()
		}
	}
	if p.ds, err = readDeleteSet(d); err != nil {
		return p, err
	}
	if d.Remaining() != 0 {
		return p, errorf("%d bytes after the delete set", d.Remaining())
	}
	return p, nil
}

// wrap turns a lib0 error into one that wraps ErrMalformed, saying where it happened. Errors
// that already wrap ErrMalformed get the context only.
func wrap(where string, err error) error {
	return fmt.Errorf("%w: %s: %w", ErrMalformed, where, err)
}
