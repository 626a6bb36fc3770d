package yupdate

import (
	"encoding/json"
	"fmt"
	"unicode/utf8"

	"ginws.dev/ginws/yjs/internal/lib0"
)

// Struct kinds of the v1 update format. The info byte of an Item holds its content reference in
// the low 5 bits; 0 means GC and 10 means Skip.
const (
	kindGC byte = iota
	kindSkip
	kindItem
)

// Content references (the low 5 bits of an Item's info byte).
const (
	refDeleted = 1
	refJSON    = 2
	refBinary  = 3
	refString  = 4
	refEmbed   = 5
	refFormat  = 6
	refType    = 7
	refAny     = 8
	refDoc     = 9
	refSkip    = 10
)

// Info byte flags of an Item.
const (
	infoParentSub   = 0x20 // BIT6: a parentSub (map key) follows the parent
	infoRightOrigin = 0x40 // BIT7: a right origin ID follows
	infoOrigin      = 0x80 // BIT8: an origin ID follows
)

// maxTypeRef is the highest shared-type reference Yjs reads (YXmlText).
const maxTypeRef = 6

type id struct{ client, clock uint64 }

// block is one struct of an update: a GC or Skip range, or an Item. Byte slices alias the update
// it was parsed from. A block cut by Merge keeps its original content and counts the cut-off
// units in cut; its clock and length describe what is left.
type block struct {
	client, clock, length uint64
	cut                   uint64
	kind                  byte
	ref                   byte
	hasOrigin             bool
	hasRightOrigin        bool
	hasParentSub          bool // the parentSub is known: it was written (only without origins)
	parentIsKey           bool
	origin, rightOrigin   id
	parentID              id
	parentKey, parentSub  []byte
	content               []byte // the encoded content (a string: its UTF-8 bytes), see appendBlock
}

func (b *block) end() uint64 { return b.clock + b.length }

// readBlock reads the struct starting at clock for client.
func readBlock(d *lib0.Decoder, client, clock uint64) (block, error) {
	b := block{client: client, clock: clock}
	info, err := d.ReadUint8()
	if err != nil {
		return b, err
	}
	ref := info & 0x1f
	switch {
	case info == refSkip:
		b.kind = kindSkip
		b.length, err = d.ReadVarUint()
	case ref == 0:
		b.kind = kindGC
		b.length, err = d.ReadVarUint()
	default:
		b.kind, b.ref = kindItem, ref
		err = readItem(d, &b, info)
	}
	if err != nil {
		return b, err
	}
	if b.length == 0 {
		return b, detail("struct of length 0 at %d:%d", client, clock)
	}
	if clock+b.length > lib0.MaxSafeInteger { // both are at most 2^53-1: no uint64 wrap
		return b, detail("clock beyond 2^53-1 at %d:%d", client, clock)
	}
	return b, nil
}

func readItem(d *lib0.Decoder, b *block, info byte) error {
	var err error
	if info&infoOrigin != 0 {
		b.hasOrigin = true
		if b.origin, err = readID(d); err != nil {
			return err
		}
	}
	if info&infoRightOrigin != 0 {
		b.hasRightOrigin = true
		if b.rightOrigin, err = readID(d); err != nil {
			return err
		}
	}
	// A client's structs integrate in clock order, so Yjs takes an origin or parent of the
	// item's own client as present: one at or after the item throws in Y.applyUpdate. No Yjs
	// item has one (its neighbours and parent existed before it; a split-off part's origin is
	// the unit before it).
	if b.hasOrigin && b.origin.client == b.client && b.origin.clock >= b.clock {
		return detail("origin %d:%d is not before the item", b.origin.client, b.origin.clock)
	}
	if b.hasRightOrigin && b.rightOrigin.client == b.client && b.rightOrigin.clock >= b.clock {
		return detail("right origin %d:%d is not before the item", b.rightOrigin.client, b.rightOrigin.clock)
	}
	if !b.hasOrigin && !b.hasRightOrigin {
		isKey, err := d.ReadVarUint()
		if err != nil {
			return err
		}
		if isKey == 1 {
			b.parentIsKey = true
			if b.parentKey, err = d.ReadVarStringBytes(); err != nil {
				return err
			}
		} else if b.parentID, err = readID(d); err != nil {
			return err
		} else if b.parentID.client == b.client && b.parentID.clock >= b.clock {
			return detail("parent %d:%d is not before the item", b.parentID.client, b.parentID.clock)
		}
		if info&infoParentSub != 0 {
			b.hasParentSub = true
			if b.parentSub, err = d.ReadVarStringBytes(); err != nil {
				return err
			}
		}
	}
	start := d.Pos()
	switch b.ref {
	case refDeleted:
		b.length, err = d.ReadVarUint()
		return err
	case refJSON:
		b.length, err = readJSONList(d)
	case refBinary:
		_, err = d.ReadVarBytes()
		b.length = 1
	case refString:
		var s []byte
		if s, err = d.ReadVarBytes(); err != nil {
			return err
		}
		n, ok := utf16Len(s)
		if !ok {
			return lib0.ErrInvalidUTF8
		}
		b.length, b.content = uint64(n), s
		return nil
	case refEmbed:
		err = readJSON(d)
		b.length = 1
	case refFormat:
		if _, err = d.ReadVarStringBytes(); err == nil {
			err = readJSON(d)
		}
		b.length = 1
	case refType:
		var t uint64
		if t, err = d.ReadVarUint(); err != nil {
			return err
		}
		if t > maxTypeRef {
			return detail("unknown shared type %d", t)
		}
		if t == 3 || t == 5 { // YXmlElement's node name, YXmlHook's hook name
			_, err = d.ReadVarStringBytes()
		}
		b.length = 1
	case refAny:
		b.length, err = readAnyList(d)
	case refDoc:
		if _, err = d.ReadVarStringBytes(); err != nil {
			return err
		}
		// Yjs spreads the options into an object; anything but an object makes it throw.
		if r := d.Rest(); len(r) == 0 || r[0] != lib0.AnyObject {
			return detail("subdocument options are not an object")
		}
		err = d.SkipAny()
		b.length = 1
	default:
		return detail("unknown content type %d", b.ref)
	}
	if err != nil {
		return err
	}
	b.content = d.Since(start)
	return nil
}

func readID(d *lib0.Decoder) (id, error) {
	client, err := d.ReadVarUint()
	if err != nil {
		return id{}, err
	}
	clock, err := d.ReadVarUint()
	return id{client, clock}, err
}

// readJSONList reads ContentJSON: a count and that many JSON texts (or "undefined").
func readJSONList(d *lib0.Decoder) (uint64, error) {
	n, err := d.ReadVarUint()
	if err != nil {
		return 0, err
	}
	if n > uint64(d.Remaining()) {
		return 0, lib0.ErrUnexpectedEnd
	}
	for i := uint64(0); i < n; i++ {
		s, err := d.ReadVarStringBytes()
		if err != nil {
			return 0, err
		}
		if string(s) != "undefined" && !json.Valid(s) {
			return 0, detail("JSON content is not JSON")
		}
	}
	return n, nil
}

func readJSON(d *lib0.Decoder) error {
	s, err := d.ReadVarStringBytes()
	if err != nil {
		return err
	}
	if !json.Valid(s) {
		return detail("embed or format value is not JSON")
	}
	return nil
}

func readAnyList(d *lib0.Decoder) (uint64, error) {
	n, err := d.ReadVarUint()
	if err != nil {
		return 0, err
	}
	if n > uint64(d.Remaining()) {
		return 0, lib0.ErrUnexpectedEnd
	}
	for i := uint64(0); i < n; i++ {
		if err := d.SkipAny(); err != nil {
			return 0, err
		}
	}
	return n, nil
}

// utf16Len validates UTF-8 and counts UTF-16 code units, the unit of Yjs string lengths and
// clocks.
func utf16Len(s []byte) (int, bool) {
	n := 0
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			i++
			n++
			continue
		}
		r, size := utf8.DecodeRune(s[i:])
		if r == utf8.RuneError && size == 1 {
			return 0, false
		}
		i += size
		n++
		if r >= 0x10000 {
			n++
		}
	}
	return n, true
}

// detail describes a problem inside a struct; the reader wraps it with ErrMalformed and the
// struct's position.
func detail(format string, args ...any) error { return fmt.Errorf(format, args...) }

// errorf returns an error wrapping ErrMalformed.
func errorf(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrMalformed}, args...)...)
}
