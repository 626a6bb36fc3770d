// Package lib0 reads and writes the binary encoding of the lib0 JavaScript library, which Yjs and
// y-protocols use on the wire: variable-length unsigned and signed integers, length-prefixed
// strings and byte arrays, big-endian floats, and lib0's self-describing "any" values.
//
// The Decoder is built for untrusted input. Every length it reads is checked against the bytes
// that remain before anything is sliced or allocated, every error is returned (nothing panics),
// and the results alias the input instead of copying it. Integers are read as uint64 but only up
// to MaxSafeInteger (2^53-1), as far as JavaScript numbers are exact: lib0 in JavaScript throws
// (or silently rounds) beyond it, so a value a Go peer accepted above it would be poison to every
// JavaScript peer it is relayed to. Overlong encodings, which lib0 never writes, are refused too.
//
// Concurrency: a Decoder is a cursor over a byte slice and must not be shared between goroutines;
// the Append functions are pure and safe to call from anywhere.
package lib0

import (
	"encoding/binary"
	"math"
	"unicode/utf8"
)

// MaxSafeInteger is JavaScript's Number.MAX_SAFE_INTEGER, 2^53-1: the largest integer the
// Decoder accepts, in a varuint or as a varint's magnitude.
const MaxSafeInteger = 1<<53 - 1

// maxVarUintLen is the longest varuint up to MaxSafeInteger: 7 groups of 7 bits and an eighth
// byte that carries the top 4 bits.
const maxVarUintLen = 8

// Decoder reads lib0 values from the front of a byte slice. The zero value reads nothing; use
// NewDecoder. Slices it returns alias the input.
type Decoder struct {
	buf []byte
	pos int
}

// NewDecoder returns a Decoder positioned at the start of b.
func NewDecoder(b []byte) *Decoder { return &Decoder{buf: b} }

// Reset points d at the start of b, so one Decoder can be reused without allocating.
func (d *Decoder) Reset(b []byte) { d.buf, d.pos = b, 0 }

// Pos is the number of bytes read so far.
func (d *Decoder) Pos() int { return d.pos }

// Remaining is the number of bytes not read yet.
func (d *Decoder) Remaining() int { return len(d.buf) - d.pos }

// Rest returns the unread bytes without consuming them.
func (d *Decoder) Rest() []byte { return d.buf[d.pos:] }

// Since returns the bytes read from position start (an earlier Pos) to the current position.
func (d *Decoder) Since(start int) []byte { return d.buf[start:d.pos] }

// ReadUint8 reads one byte.
func (d *Decoder) ReadUint8() (byte, error) {
	if d.pos >= len(d.buf) {
		return 0, ErrUnexpectedEnd
	}
	b := d.buf[d.pos]
	d.pos++
	return b, nil
}

// ReadVarUint reads an unsigned integer of 7 bits a byte, least significant group first, the high
// bit of each byte saying another follows. Values above MaxSafeInteger are ErrOverflow; an
// encoding with a superfluous zero group at the end (which lib0 never writes) is ErrOverlong.
func (d *Decoder) ReadVarUint() (uint64, error) {
	var v uint64
	for i := 0; i < maxVarUintLen; i++ {
		if d.pos >= len(d.buf) {
			return 0, ErrUnexpectedEnd
		}
		b := d.buf[d.pos]
		d.pos++
		if i == maxVarUintLen-1 && b > 0x0f { // 7*7 + 4 bits = 53
			return 0, ErrOverflow
		}
		v |= uint64(b&0x7f) << (7 * i)
		if b < 0x80 {
			if b == 0 && i > 0 {
				return 0, ErrOverlong
			}
			return v, nil
		}
	}
	return 0, ErrOverflow
}

// ReadVarInt reads lib0's signed integer: the first byte holds a continuation bit (0x80), the sign
// (0x40) and the 6 lowest bits of the magnitude; further bytes carry 7 bits each like a varuint.
// A magnitude above MaxSafeInteger is ErrOverflow. lib0 can encode -0; it is returned as 0.
func (d *Decoder) ReadVarInt() (int64, error) {
	if d.pos >= len(d.buf) {
		return 0, ErrUnexpectedEnd
	}
	b := d.buf[d.pos]
	d.pos++
	mag := uint64(b & 0x3f)
	neg := b&0x40 != 0
	if b&0x80 != 0 {
		shift := uint(6)
		for {
			if d.pos >= len(d.buf) {
				return 0, ErrUnexpectedEnd
			}
			b = d.buf[d.pos]
			d.pos++
			group := uint64(b & 0x7f)
			if shift >= 63 || (shift > 56 && group>>(63-shift) != 0) {
				return 0, ErrOverflow
			}
			mag |= group << shift
			shift += 7
			if b < 0x80 {
				if b == 0 {
					return 0, ErrOverlong
				}
				break
			}
		}
	}
	if mag > MaxSafeInteger {
		return 0, ErrOverflow
	}
	if neg {
		return -int64(mag), nil
	}
	return int64(mag), nil
}

// ReadBytes reads exactly n bytes, aliasing the input.
func (d *Decoder) ReadBytes(n uint64) ([]byte, error) {
	if n > uint64(len(d.buf)-d.pos) {
		return nil, ErrUnexpectedEnd
	}
	b := d.buf[d.pos : d.pos+int(n) : d.pos+int(n)]
	d.pos += int(n)
	return b, nil
}

// ReadVarBytes reads a varuint length and that many bytes (lib0's writeVarUint8Array), aliasing
// the input. The capacity of the result is its length, so appending to it never writes into the
// input.
func (d *Decoder) ReadVarBytes() ([]byte, error) {
	n, err := d.ReadVarUint()
	if err != nil {
		return nil, err
	}
	return d.ReadBytes(n)
}

// ReadVarStringBytes reads a length-prefixed UTF-8 string and returns its bytes, aliasing the
// input. Invalid UTF-8 is ErrInvalidUTF8, as lib0's fatal TextDecoder throws on it.
func (d *Decoder) ReadVarStringBytes() ([]byte, error) {
	b, err := d.ReadVarBytes()
	if err != nil {
		return nil, err
	}
	if !utf8.Valid(b) {
		return nil, ErrInvalidUTF8
	}
	return b, nil
}

// ReadVarString is ReadVarStringBytes converted to a string (one allocation).
func (d *Decoder) ReadVarString() (string, error) {
	b, err := d.ReadVarStringBytes()
	return string(b), err
}

// ReadFloat32 reads a big-endian IEEE 754 single.
func (d *Decoder) ReadFloat32() (float32, error) {
	b, err := d.ReadBytes(4)
	if err != nil {
		return 0, err
	}
	return math.Float32frombits(binary.BigEndian.Uint32(b)), nil
}

// ReadFloat64 reads a big-endian IEEE 754 double.
func (d *Decoder) ReadFloat64() (float64, error) {
	b, err := d.ReadBytes(8)
	if err != nil {
		return 0, err
	}
	return math.Float64frombits(binary.BigEndian.Uint64(b)), nil
}

// ReadBigInt64 reads a big-endian two's complement 64-bit integer (lib0's writeBigInt64).
func (d *Decoder) ReadBigInt64() (int64, error) {
	b, err := d.ReadBytes(8)
	if err != nil {
		return 0, err
	}
	return int64(binary.BigEndian.Uint64(b)), nil
}
