package lib0

// Golden fixtures: testdata/lib0.json holds values encoded by the real lib0. Regenerate with
//
//	cd ginws/yjs/testdata/js && node gen/lib0-fixtures.mjs > ../../internal/lib0/testdata/lib0.json

import (
	"bytes"
	"errors"
	"math"
	"strconv"
	"testing"

	"ginws.dev/ginws/yjs/internal/jstest"
)

type golden struct {
	Varuint []struct{ Value, Hex string } `json:"varuint"`
	Varint  []struct{ Value, Hex string } `json:"varint"`
	String  []struct{ Value, Hex string } `json:"string"`
	Float64 []struct {
		Value float64
		Hex   string
	} `json:"float64"`
	Float32 []struct {
		Value float32
		Hex   string
	} `json:"float32"`
	BigInt64 []struct{ Value, Hex string } `json:"bigint64"`
	Any      []struct{ Hex string }        `json:"any"`
}

func loadGolden(t testing.TB) golden {
	t.Helper()
	var g golden
	jstest.LoadJSON(t, "testdata/lib0.json", &g)
	if len(g.Varuint) == 0 || len(g.Any) == 0 {
		t.Fatal("golden file is empty")
	}
	return g
}

func TestGoldenVarUint(t *testing.T) {
	t.Parallel()
	for _, c := range loadGolden(t).Varuint {
		v, err := strconv.ParseUint(c.Value, 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		want := jstest.Unhex(t, c.Hex)
		if got := AppendVarUint(nil, v); !bytes.Equal(got, want) {
			t.Errorf("AppendVarUint(%d) = %x, lib0 wrote %x", v, got, want)
		}
		if n := VarUintLen(v); n != len(want) {
			t.Errorf("VarUintLen(%d) = %d, want %d", v, n, len(want))
		}
		d := NewDecoder(want)
		got, err := d.ReadVarUint()
		if err != nil || got != v || d.Remaining() != 0 {
			t.Errorf("ReadVarUint(%x) = %d, %v (remaining %d), want %d", want, got, err, d.Remaining(), v)
		}
	}
}

func TestGoldenVarInt(t *testing.T) {
	t.Parallel()
	for _, c := range loadGolden(t).Varint {
		v, err := strconv.ParseInt(c.Value, 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		want := jstest.Unhex(t, c.Hex)
		if got := AppendVarInt(nil, v); !bytes.Equal(got, want) {
			t.Errorf("AppendVarInt(%d) = %x, lib0 wrote %x", v, got, want)
		}
		d := NewDecoder(want)
		got, err := d.ReadVarInt()
		if err != nil || got != v || d.Remaining() != 0 {
			t.Errorf("ReadVarInt(%x) = %d, %v, want %d", want, got, err, v)
		}
	}
}

func TestGoldenStringsFloatsBigInts(t *testing.T) {
	t.Parallel()
	g := loadGolden(t)
	for _, c := range g.String {
		want := jstest.Unhex(t, c.Hex)
		if got := AppendVarString(nil, c.Value); !bytes.Equal(got, want) {
			t.Errorf("AppendVarString(%q) = %x, lib0 wrote %x", c.Value, got, want)
		}
		d := NewDecoder(want)
		if s, err := d.ReadVarString(); err != nil || s != c.Value || d.Remaining() != 0 {
			t.Errorf("ReadVarString(%x) = %q, %v", want, s, err)
		}
	}
	for _, c := range g.Float64 {
		want := jstest.Unhex(t, c.Hex)
		if got := AppendFloat64(nil, c.Value); !bytes.Equal(got, want) {
			t.Errorf("AppendFloat64(%v) = %x, want %x", c.Value, got, want)
		}
		if f, err := NewDecoder(want).ReadFloat64(); err != nil || f != c.Value {
			t.Errorf("ReadFloat64(%x) = %v, %v", want, f, err)
		}
	}
	for _, c := range g.Float32 {
		want := jstest.Unhex(t, c.Hex)
		if got := AppendFloat32(nil, c.Value); !bytes.Equal(got, want) {
			t.Errorf("AppendFloat32(%v) = %x, want %x", c.Value, got, want)
		}
		if f, err := NewDecoder(want).ReadFloat32(); err != nil || f != c.Value {
			t.Errorf("ReadFloat32(%x) = %v, %v", want, f, err)
		}
	}
	for _, c := range g.BigInt64 {
		v, err := strconv.ParseInt(c.Value, 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		want := jstest.Unhex(t, c.Hex)
		if got := AppendBigInt64(nil, v); !bytes.Equal(got, want) {
			t.Errorf("AppendBigInt64(%d) = %x, want %x", v, got, want)
		}
		if got, err := NewDecoder(want).ReadBigInt64(); err != nil || got != v {
			t.Errorf("ReadBigInt64(%x) = %d, %v", want, got, err)
		}
	}
}

// Every any value lib0 writes is skipped exactly, also when followed by more data.
func TestGoldenAny(t *testing.T) {
	t.Parallel()
	for _, c := range loadGolden(t).Any {
		enc := jstest.Unhex(t, c.Hex)
		withTail := append(append([]byte{}, enc...), 0xAA, 0xBB)
		d := NewDecoder(withTail)
		raw, err := d.ReadAnyRaw()
		if err != nil {
			t.Errorf("ReadAnyRaw(%x): %v", enc, err)
			continue
		}
		if !bytes.Equal(raw, enc) || d.Remaining() != 2 {
			t.Errorf("ReadAnyRaw(%x) = %x, remaining %d", enc, raw, d.Remaining())
		}
		// Every strict prefix is truncated input.
		for i := 0; i < len(enc); i++ {
			if err := NewDecoder(enc[:i]).SkipAny(); err == nil {
				t.Errorf("SkipAny(%x) accepted a prefix of %x", enc[:i], enc)
			}
		}
	}
}

func TestVarUintEdges(t *testing.T) {
	t.Parallel()
	maxSafe := []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x0f}
	if got := AppendVarUint(nil, MaxSafeInteger); !bytes.Equal(got, maxSafe) {
		t.Fatalf("AppendVarUint(MaxSafeInteger) = %x", got)
	}
	cases := []struct {
		in   []byte
		want uint64
		err  error
	}{
		{maxSafe, MaxSafeInteger, nil},
		{[]byte{0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x08}, 1 << 52, nil},
		// Everything JavaScript cannot hold exactly is refused: 2^53, and 2^64-1 (the reviewer's
		// client ID, on which lib0 throws "Integer out of Range").
		{[]byte{0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x10}, 0, ErrOverflow},
		{AppendVarUint(nil, math.MaxUint64), 0, ErrOverflow},
		{[]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02}, 0, ErrOverflow},
		{[]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x8f, 0x00}, 0, ErrOverflow},
		{[]byte{0x80, 0x00}, 0, ErrOverlong},
		{[]byte{0xff, 0x80, 0x00}, 0, ErrOverlong},
		{[]byte{}, 0, ErrUnexpectedEnd},
		{[]byte{0x80}, 0, ErrUnexpectedEnd},
		{[]byte{0xff, 0xff}, 0, ErrUnexpectedEnd},
	}
	for _, c := range cases {
		got, err := NewDecoder(c.in).ReadVarUint()
		if !errors.Is(err, c.err) || got != c.want {
			t.Errorf("ReadVarUint(%x) = %d, %v; want %d, %v", c.in, got, err, c.want, c.err)
		}
	}
}

func TestVarIntEdges(t *testing.T) {
	t.Parallel()
	for _, v := range []int64{0, -1, 63, -64, MaxSafeInteger, -MaxSafeInteger, 1 << 52, -(1 << 52)} {
		enc := AppendVarInt(nil, v)
		got, err := NewDecoder(enc).ReadVarInt()
		if err != nil || got != v {
			t.Errorf("round trip %d via %x = %d, %v", v, enc, got, err)
		}
	}
	cases := []struct {
		in  []byte
		err error
	}{
		{[]byte{0x80, 0x00}, ErrOverlong},
		{[]byte{0xc0}, ErrUnexpectedEnd},
		{AppendVarInt(nil, MaxSafeInteger+1), ErrOverflow},
		{AppendVarInt(nil, -MaxSafeInteger-1), ErrOverflow},
		{AppendVarInt(nil, math.MaxInt64), ErrOverflow},
		{AppendVarInt(nil, math.MinInt64), ErrOverflow},
		{[]byte{0xbf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f}, ErrOverflow},
	}
	for _, c := range cases {
		if _, err := NewDecoder(c.in).ReadVarInt(); !errors.Is(err, c.err) {
			t.Errorf("ReadVarInt(%x) error = %v, want %v", c.in, err, c.err)
		}
	}
	// lib0 writes -0 as 0x40; it reads as 0.
	if v, err := NewDecoder([]byte{0x40}).ReadVarInt(); err != nil || v != 0 {
		t.Errorf("ReadVarInt(-0) = %d, %v", v, err)
	}
}

func TestLengthsAreBoundedByInput(t *testing.T) {
	// Not parallel: testing.AllocsPerRun counts the allocations of the whole process.
	// A length of 2^40 must fail on the bounds check, not try to allocate.
	huge := AppendVarUint(nil, 1<<40)
	if _, err := NewDecoder(huge).ReadVarBytes(); !errors.Is(err, ErrUnexpectedEnd) {
		t.Errorf("ReadVarBytes(2^40) = %v", err)
	}
	if _, err := NewDecoder(append([]byte{AnyArray}, huge...)).ReadAnyRaw(); !errors.Is(err, ErrUnexpectedEnd) {
		t.Errorf("array of 2^40 elements = %v", err)
	}
	allocs := testing.AllocsPerRun(100, func() {
		_, _ = NewDecoder(append([]byte{AnyObject}, huge...)).ReadAnyRaw()
	})
	if allocs > 3 {
		t.Errorf("a lying object count cost %v allocations", allocs)
	}
}

func TestAnyMalformed(t *testing.T) {
	t.Parallel()
	deep := bytes.Repeat([]byte{AnyArray, 1}, MaxAnyDepth+1)
	deep = append(deep, AnyNull)
	okDeep := append(bytes.Repeat([]byte{AnyArray, 1}, MaxAnyDepth-1), AnyNull)
	cases := []struct {
		name string
		in   []byte
		err  error
	}{
		{"unknown tag", []byte{115}, ErrUnknownAnyType},
		{"tag zero", []byte{0}, ErrUnknownAnyType},
		{"bad utf8 string", []byte{AnyString, 1, 0xff}, ErrInvalidUTF8},
		{"bad utf8 key", []byte{AnyObject, 1, 1, 0xc0, AnyNull}, ErrInvalidUTF8},
		{"surrogate in utf8", []byte{AnyString, 3, 0xed, 0xa0, 0x80}, ErrInvalidUTF8},
		{"short float", []byte{AnyFloat64, 1, 2, 3}, ErrUnexpectedEnd},
		{"too deep", deep, ErrTooDeep},
		{"object missing value", []byte{AnyObject, 1, 1, 'k'}, ErrUnexpectedEnd},
		{"overlong count", []byte{AnyArray, 0x80, 0x00}, ErrOverlong},
	}
	for _, c := range cases {
		if err := NewDecoder(c.in).SkipAny(); !errors.Is(err, c.err) {
			t.Errorf("%s: SkipAny(%x) = %v, want %v", c.name, c.in, err, c.err)
		}
	}
	if err := NewDecoder(okDeep).SkipAny(); err != nil {
		t.Errorf("nesting of depth %d refused: %v", MaxAnyDepth-1, err)
	}
}

func TestReadVarBytesDoesNotShareCapacity(t *testing.T) {
	t.Parallel()
	in := []byte{2, 'a', 'b', 'c'}
	b, err := NewDecoder(in).ReadVarBytes()
	if err != nil {
		t.Fatal(err)
	}
	_ = append(b, 'X')
	if in[3] != 'c' {
		t.Fatal("appending to a decoded slice overwrote the input")
	}
}

func FuzzDecoder(f *testing.F) {
	for _, c := range loadGolden(f).Any {
		f.Add(jstest.Unhex(f, c.Hex))
	}
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01})
	f.Fuzz(func(t *testing.T, b []byte) {
		d := NewDecoder(b)
		if raw, err := d.ReadAnyRaw(); err == nil {
			if len(raw) != d.Pos() {
				t.Fatalf("raw any of %d bytes but %d consumed", len(raw), d.Pos())
			}
		}
		d.Reset(b)
		if v, err := d.ReadVarUint(); err == nil {
			if enc := AppendVarUint(nil, v); !bytes.Equal(enc, b[:d.Pos()]) {
				t.Fatalf("varuint %x read as %d re-encodes as %x", b[:d.Pos()], v, enc)
			}
		}
		d.Reset(b)
		if v, err := d.ReadVarInt(); err == nil && v != 0 {
			if enc := AppendVarInt(nil, v); !bytes.Equal(enc, b[:d.Pos()]) {
				t.Fatalf("varint %x read as %d re-encodes as %x", b[:d.Pos()], v, enc)
			}
		}
	})
}
