package yupdate

import (
	"unicode/utf8"

	"ginws.dev/ginws/yjs/internal/lib0"
)

// structWriter writes structs client section by client section, as Yjs's lazy struct writer
// does: a section starts with the client and the clock of its first struct and is prefixed, once
// complete, with the number of structs in it. Sections are buffered in one byte slice.
type structWriter struct {
	buf      []byte    // the bodies of all sections, back to back
	sections []section // where each body lies in buf
	open     bool
	client   uint64
	double   bool // grow buf by doubling (for a buffer that starts small, see Diff)
}

type section struct {
	start, end int
	structs    uint64
}

// write appends b, minus its first offset units, to the current section or a new one.
func (w *structWriter) write(b *block, offset uint64) {
	if w.open && w.client != b.client {
		w.open = false
	}
	if need := 8*lib0MaxVarUint + len(b.content) + len(b.parentKey) + len(b.parentSub) + 8; w.double && cap(w.buf)-len(w.buf) < need {
		// Double, rather than let append grow large buffers by a quarter at a time: a writer
		// that starts small (Diff) then allocates at most about twice what it writes.
		grown := make([]byte, len(w.buf), 2*cap(w.buf)+need)
		copy(grown, w.buf)
		w.buf = grown
	}
	if !w.open {
		w.open, w.client = true, b.client
		w.sections = append(w.sections, section{start: len(w.buf)})
		w.buf = lib0.AppendVarUint(w.buf, b.client)
		w.buf = lib0.AppendVarUint(w.buf, b.clock+offset)
	}
	w.buf = appendBlock(w.buf, b, offset)
	s := &w.sections[len(w.sections)-1]
	s.structs++
	s.end = len(w.buf)
}

// finish appends the section count and the sections to dst.
func (w *structWriter) finish(dst []byte) []byte {
	dst = lib0.AppendVarUint(dst, uint64(len(w.sections)))
	for _, s := range w.sections {
		dst = lib0.AppendVarUint(dst, s.structs)
		dst = append(dst, w.buf[s.start:s.end]...)
	}
	return dst
}

// appendBlock encodes b without its first offset units, as Yjs's struct write(encoder, offset)
// does. An item written from an offset gets the unit before it as its origin, so its parent is
// implied and not written.
func appendBlock(dst []byte, b *block, offset uint64) []byte {
	switch b.kind {
	case kindGC:
		dst = append(dst, 0)
		return lib0.AppendVarUint(dst, b.length-offset)
	case kindSkip:
		dst = append(dst, refSkip)
		return lib0.AppendVarUint(dst, b.length-offset)
	}
	cut := b.cut + offset
	hasOrigin, origin := b.hasOrigin, b.origin
	if offset > 0 {
		hasOrigin, origin = true, id{b.client, b.clock + offset - 1}
	}
	info := b.ref
	if hasOrigin {
		info |= infoOrigin
	}
	if b.hasRightOrigin {
		info |= infoRightOrigin
	}
	if b.hasParentSub {
		info |= infoParentSub
	}
	dst = append(dst, info)
	if hasOrigin {
		dst = appendID(dst, origin)
	}
	if b.hasRightOrigin {
		dst = appendID(dst, b.rightOrigin)
	}
	if !hasOrigin && !b.hasRightOrigin {
		if b.parentIsKey {
			dst = append(dst, 1)
			dst = lib0.AppendVarBytes(dst, b.parentKey)
		} else {
			dst = append(dst, 0)
			dst = appendID(dst, b.parentID)
		}
		if b.hasParentSub {
			dst = lib0.AppendVarBytes(dst, b.parentSub)
		}
	}
	switch b.ref {
	case refDeleted:
		return lib0.AppendVarUint(dst, b.length-offset)
	case refString:
		return appendStringFrom(dst, b.content, cut)
	case refJSON, refAny:
		if cut == 0 {
			return append(dst, b.content...)
		}
		return appendListFrom(dst, b.content, cut, b.ref == refAny)
	default: // one unit long, never cut
		return append(dst, b.content...)
	}
}

func appendID(dst []byte, i id) []byte {
	dst = lib0.AppendVarUint(dst, i.client)
	return lib0.AppendVarUint(dst, i.clock)
}

// appendStringFrom writes the UTF-8 string s from its UTF-16 unit `from` on. A cut through a
// surrogate pair leaves half a character, which Yjs writes as U+FFFD (the TextEncoder replaces
// the lone surrogate; Y.mergeUpdates replaces it explicitly).
func appendStringFrom(dst, s []byte, from uint64) []byte {
	if from == 0 {
		return lib0.AppendVarBytes(dst, s)
	}
	units := uint64(0)
	i := 0
	for i < len(s) && units < from {
		r, size := utf8.DecodeRune(s[i:])
		i += size
		units++
		if r >= 0x10000 {
			units++
		}
	}
	if units > from { // the cut fell between the halves of the last pair
		rest := s[i:]
		dst = lib0.AppendVarUint(dst, uint64(len(rest)+3))
		dst = append(dst, 0xEF, 0xBF, 0xBD)
		return append(dst, rest...)
	}
	return lib0.AppendVarBytes(dst, s[i:])
}

// appendListFrom writes ContentJSON or ContentAny (a count, then that many values) from element
// `from` on. content was validated when it was parsed.
func appendListFrom(dst, content []byte, from uint64, isAny bool) []byte {
	d := lib0.NewDecoder(content)
	n, _ := d.ReadVarUint()
	for i := uint64(0); i < from; i++ {
		if isAny {
			_ = d.SkipAny()
		} else {
			_, _ = d.ReadVarBytes()
		}
	}
	dst = lib0.AppendVarUint(dst, n-from)
	return append(dst, d.Rest()...)
}
