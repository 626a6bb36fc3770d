package lib0

import (
	"encoding/binary"
	"math"
)

// The Append functions write lib0 values at the end of dst and return the extended slice, in the
// style of strconv.AppendInt, so a caller can build a whole message in one buffer.

// AppendVarUint appends v in lib0's varuint format (7 bits a byte, low group first).
func AppendVarUint(dst []byte, v uint64) []byte {
	for v >= 0x80 {
		dst = append(dst, byte(v)|0x80)
		v >>= 7
	}
	return append(dst, byte(v))
}

// VarUintLen is the number of bytes AppendVarUint writes for v.
func VarUintLen(v uint64) int {
	n := 1
	for v >= 0x80 {
		v >>= 7
		n++
	}
	return n
}

// AppendVarInt appends v in lib0's varint format: sign and 6 bits in the first byte, then 7 bits a
// byte.
func AppendVarInt(dst []byte, v int64) []byte {
	var mag uint64
	var sign byte
	if v < 0 {
		mag, sign = uint64(-v), 0x40 // -MinInt64 wraps to itself, which is the right magnitude
	} else {
		mag = uint64(v)
	}
	first := sign | byte(mag&0x3f)
	mag >>= 6
	if mag == 0 {
		return append(dst, first)
	}
	dst = append(dst, first|0x80)
	return AppendVarUint(dst, mag)
}

// AppendVarBytes appends len(b) as a varuint and then b (lib0's writeVarUint8Array).
func AppendVarBytes(dst, b []byte) []byte {
	dst = AppendVarUint(dst, uint64(len(b)))
	return append(dst, b...)
}

// AppendVarString appends a length-prefixed string. s should be valid UTF-8; the bytes are written
// as they are.
func AppendVarString(dst []byte, s string) []byte {
	dst = AppendVarUint(dst, uint64(len(s)))
	return append(dst, s...)
}

// AppendFloat32 appends f big-endian.
func AppendFloat32(dst []byte, f float32) []byte {
	return binary.BigEndian.AppendUint32(dst, math.Float32bits(f))
}

// AppendFloat64 appends f big-endian.
func AppendFloat64(dst []byte, f float64) []byte {
	return binary.BigEndian.AppendUint64(dst, math.Float64bits(f))
}

// AppendBigInt64 appends v big-endian, two's complement.
func AppendBigInt64(dst []byte, v int64) []byte {
	return binary.BigEndian.AppendUint64(dst, uint64(v))
}
