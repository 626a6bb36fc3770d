package main

import (
	"errors"
	"fmt"
	"unicode/utf8"
)

// The benchmark's editors type one character at a time at the end of their own run of text in
// one shared Y.Text named "t". Each keystroke is one Yjs update (format v1), byte for byte what
// real yjs emits for `text.insert(k, ch)` in a document with that client ID whose text holds only
// the editor's own earlier characters (update_test.go checks this against yjs itself). Such an
// update depends only on the same editor's previous one, so any server can apply it in order.
//
//	k == 0: 1 client, 1 struct, client, clock 0, info 0x04 (string, no origins), parent "t", ch, no deletes
//	k > 0:  1 client, 1 struct, client, clock k, info 0x84 (string, left origin), origin (client, k-1), ch, no deletes

// y-protocols message types (the first varuint of a y-websocket frame) and sync sub-types.
const (
	msgSync      = 0
	msgAwareness = 1

	syncStep1  = 0
	syncStep2  = 1
	syncUpdate = 2
)

// textName is the root Y.Text every editor types into.
const textName = "t"

// keystroke returns the y-websocket frame (sync, update, the update) that carries editor
// client's k-th keystroke, ch (ASCII).
func keystroke(client uint32, k uint64, ch byte) []byte {
	u := make([]byte, 0, 24)
	u = append(u, 1, 1)
	u = appendVarUint(u, uint64(client))
	u = appendVarUint(u, k)
	if k == 0 {
		u = append(u, 0x04, 1) // ContentString, parent given by root key
		u = appendVarString(u, textName)
	} else {
		u = append(u, 0x84) // ContentString, left origin follows
		u = appendVarUint(u, uint64(client))
		u = appendVarUint(u, k-1)
	}
	u = append(u, 1, ch)
	u = append(u, 0) // empty delete set
	return frame(msgSync, syncUpdate, u)
}

// frame wraps payload as a y-websocket sync message of the given sub-type.
func frame(msgType, syncType uint64, payload []byte) []byte {
	b := make([]byte, 0, len(payload)+8)
	b = appendVarUint(b, msgType)
	b = appendVarUint(b, syncType)
	b = appendVarUint(b, uint64(len(payload)))
	return append(b, payload...)
}

func appendVarUint(b []byte, v uint64) []byte {
	for v >= 0x80 {
		b = append(b, byte(v)|0x80)
		v >>= 7
	}
	return append(b, byte(v))
}

func appendVarString(b []byte, s string) []byte {
	b = appendVarUint(b, uint64(len(s)))
	return append(b, s...)
}

// errShort is returned for a message that ends in the middle of a field.
var errShort = errors.New("bench: truncated message")

// reader decodes lib0 varints from a byte slice without allocating.
type reader struct {
	b   []byte
	off int
}

func (r *reader) uint() (uint64, error) {
	var v uint64
	for shift := uint(0); shift < 64; shift += 7 {
		if r.off >= len(r.b) {
			return 0, errShort
		}
		c := r.b[r.off]
		r.off++
		v |= uint64(c&0x7f) << shift
		if c < 0x80 {
			return v, nil
		}
	}
	return 0, errors.New("bench: varint overflows 64 bits")
}

func (r *reader) bytes() ([]byte, error) {
	n, err := r.uint()
	if err != nil {
		return nil, err
	}
	if n > uint64(len(r.b)-r.off) {
		return nil, errShort
	}
	s := r.b[r.off : r.off+int(n)]
	r.off += int(n)
	return s, nil
}

// span is a run of one client's clocks that an update carries: [start, end).
type span struct {
	client     uint64
	start, end uint64
}

// updateSpans lists which clocks of which clients a v1 update carries, in order, appending to
// dst. It understands what the benchmark's editors produce and what a server may make of it by
// merging updates: string items (with or without origins), GC and skip structs, any delete set.
// Anything else is an error, so a server that garbles updates fails the benchmark's check.
func updateSpans(dst []span, update []byte) ([]span, error) {
	r := reader{b: update}
	clients, err := r.uint()
	if err != nil {
		return dst, err
	}
	for ; clients > 0; clients-- {
		structs, err := r.uint()
		if err != nil {
			return dst, err
		}
		client, err := r.uint()
		if err != nil {
			return dst, err
		}
		clock, err := r.uint()
		if err != nil {
			return dst, err
		}
		for ; structs > 0; structs-- {
			n, skip, err := r.structLen()
			if err != nil {
				return dst, err
			}
			if !skip {
				if k := len(dst) - 1; k >= 0 && dst[k].client == client && dst[k].end == clock {
					dst[k].end += n
				} else {
					dst = append(dst, span{client: client, start: clock, end: clock + n})
				}
			}
			clock += n
		}
	}
	// The delete set: per client, ranges of (clock, length).
	clients, err = r.uint()
	if err != nil {
		return dst, err
	}
	for ; clients > 0; clients-- {
		if _, err := r.uint(); err != nil {
			return dst, err
		}
		ranges, err := r.uint()
		if err != nil {
			return dst, err
		}
		for ; ranges > 0; ranges-- {
			if _, err := r.uint(); err != nil {
				return dst, err
			}
			if _, err := r.uint(); err != nil {
				return dst, err
			}
		}
	}
	if r.off != len(r.b) {
		return dst, fmt.Errorf("bench: %d bytes after the update", len(r.b)-r.off)
	}
	return dst, nil
}

// structLen reads one struct and returns how many clocks it spans and whether it is a skip.
func (r *reader) structLen() (n uint64, skip bool, err error) {
	if r.off >= len(r.b) {
		return 0, false, errShort
	}
	info := r.b[r.off]
	r.off++
	switch info & 0x1f {
	case 0: // GC
		n, err = r.uint()
		return n, false, err
	case 10: // skip
		n, err = r.uint()
		return n, true, err
	}
	skipID := func() error {
		if _, err := r.uint(); err != nil {
			return err
		}
		_, err := r.uint()
		return err
	}
	if info&0x80 != 0 {
		if err := skipID(); err != nil {
			return 0, false, err
		}
	}
	if info&0x40 != 0 {
		if err := skipID(); err != nil {
			return 0, false, err
		}
	}
	if info&0xc0 == 0 {
		byKey, err := r.uint()
		if err != nil {
			return 0, false, err
		}
		if byKey == 1 {
			if _, err := r.bytes(); err != nil {
				return 0, false, err
			}
		} else if err := skipID(); err != nil {
			return 0, false, err
		}
		if info&0x20 != 0 {
			if _, err := r.bytes(); err != nil {
				return 0, false, err
			}
		}
	}
	switch info & 0x1f {
	case 1: // ContentDeleted
		n, err = r.uint()
		return n, false, err
	case 4: // ContentString: its length in UTF-16 code units
		s, err := r.bytes()
		if err != nil {
			return 0, false, err
		}
		if !utf8.Valid(s) {
			return 0, false, errors.New("bench: string content is not UTF-8")
		}
		for _, c := range string(s) {
			n++
			if c > 0xffff {
				n++
			}
		}
		if n == 0 {
			return 0, false, errors.New("bench: empty string item")
		}
		return n, false, nil
	default:
		return 0, false, fmt.Errorf("bench: content type %d is not one the editors produce", info&0x1f)
	}
}
