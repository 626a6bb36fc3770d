package lib0

// lib0's "any" encoding is a tag byte followed by the value. Yjs stores map and array values
// (ContentAny), subdocument options (ContentDoc) and, in its v2 format, JSON values this way.
// This package never interprets them: a server only needs to know where one ends, so it can
// validate, slice and copy them verbatim.
const (
	AnyUint8Array byte = 116 // varuint length, bytes
	AnyArray      byte = 117 // varuint count, that many any values
	AnyObject     byte = 118 // varuint count, that many (varstring key, any value) pairs
	AnyString     byte = 119 // varstring
	AnyTrue       byte = 120
	AnyFalse      byte = 121
	AnyBigInt     byte = 122 // 8 bytes big-endian
	AnyFloat64    byte = 123 // 8 bytes big-endian
	AnyFloat32    byte = 124 // 4 bytes big-endian
	AnyInt        byte = 125 // varint
	AnyNull       byte = 126
	AnyUndefined  byte = 127
)

// MaxAnyDepth bounds how deeply arrays and objects may nest inside one any value. JavaScript's
// recursive reader overflows its stack long before a depth like this, so nothing a real peer can
// read is refused.
const MaxAnyDepth = 1000

// SkipAny reads past one any value, checking every tag, length, integer and string (UTF-8) on the
// way, without recursion and without allocating more than a small stack per level of nesting.
func (d *Decoder) SkipAny() error {
	// pending[i] counts values still to read at nesting level i; inObject[i] says that level is an
	// object, whose entries are a key string followed by a value.
	var pendingBuf [16]uint64
	var objBuf [16]bool
	pending, inObject := pendingBuf[:1], objBuf[:1]
	pending[0] = 1
	for len(pending) > 0 {
		top := len(pending) - 1
		if pending[top] == 0 {
			pending, inObject = pending[:top], inObject[:top]
			continue
		}
		pending[top]--
		if inObject[top] {
			if _, err := d.ReadVarStringBytes(); err != nil {
				return err
			}
		}
		tag, err := d.ReadUint8()
		if err != nil {
			return err
		}
		switch tag {
		case AnyUndefined, AnyNull, AnyTrue, AnyFalse:
		case AnyInt:
			_, err = d.ReadVarInt()
		case AnyFloat32:
			_, err = d.ReadBytes(4)
		case AnyFloat64, AnyBigInt:
			_, err = d.ReadBytes(8)
		case AnyString:
			_, err = d.ReadVarStringBytes()
		case AnyUint8Array:
			_, err = d.ReadVarBytes()
		case AnyArray, AnyObject:
			var n uint64
			if n, err = d.ReadVarUint(); err != nil {
				return err
			}
			// Each element takes at least one byte; a count beyond the input is a lie.
			if n > uint64(d.Remaining()) {
				return ErrUnexpectedEnd
			}
			if n == 0 {
				break
			}
			if len(pending) >= MaxAnyDepth {
				return ErrTooDeep
			}
			pending, inObject = append(pending, n), append(inObject, tag == AnyObject)
		default:
			return ErrUnknownAnyType
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// ReadAnyRaw reads one any value and returns its encoding (tag included), aliasing the input.
func (d *Decoder) ReadAnyRaw() ([]byte, error) {
	start := d.pos
	if err := d.SkipAny(); err != nil {
		return nil, err
	}
	return d.buf[start:d.pos:d.pos], nil
}
