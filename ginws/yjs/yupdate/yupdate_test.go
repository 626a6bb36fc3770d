package yupdate_test

import (
	"bytes"
	"errors"
	"math"
	"testing"

	"ginws.dev/ginws/yjs/internal/lib0"
	"ginws.dev/ginws/yjs/yupdate"
)

// builder writes v1 updates by hand, for cases no Yjs client produces (client IDs near 2^53)
// and for malformed input.
type builder struct{ b []byte }

func (u *builder) uint(v uint64) *builder { u.b = lib0.AppendVarUint(u.b, v); return u }
func (u *builder) byte(v byte) *builder   { u.b = append(u.b, v); return u }
func (u *builder) str(s string) *builder  { u.b = lib0.AppendVarString(u.b, s); return u }
func (u *builder) raw(p ...byte) *builder { u.b = append(u.b, p...); return u }
func (u *builder) bytes() []byte          { return append([]byte{}, u.b...) }
func section(structs, client, clock uint64) *builder {
	return new(builder).uint(1).uint(structs).uint(client).uint(clock)
}

// rootString is a one-section update: client inserts s at clock into root type "t".
func rootString(client, clock uint64, s string) []byte {
	return section(1, client, clock).byte(4).uint(1).str("t").str(s).uint(0).bytes()
}

// afterString is a one-section update: client inserts s at clock, right after its own clock-1.
func afterString(client, clock uint64, s string) []byte {
	return section(1, client, clock).byte(4 | 0x80).uint(client).uint(clock - 1).str(s).uint(0).bytes()
}

func TestEmptyUpdates(t *testing.T) {
	t.Parallel()
	empty := []byte{0, 0}
	for name, got := range map[string]func() ([]byte, error){
		"Merge()":             func() ([]byte, error) { return yupdate.Merge() },
		"Merge(empty)":        func() ([]byte, error) { return yupdate.Merge(empty) },
		"Merge(empty, empty)": func() ([]byte, error) { return yupdate.Merge(empty, empty) },
		"Diff(empty, {})":     func() ([]byte, error) { return yupdate.Diff(empty, []byte{0}) },
	} {
		b, err := got()
		if err != nil || !bytes.Equal(b, empty) {
			t.Errorf("%s = %x, %v; want 0000", name, b, err)
		}
	}
	if sv, err := yupdate.StateVector(empty); err != nil || !bytes.Equal(sv, []byte{0}) {
		t.Errorf("StateVector(empty) = %x, %v", sv, err)
	}
	if !yupdate.IsEmpty(empty) || !yupdate.IsEmpty(section(0, 5, 0).uint(0).bytes()) {
		t.Error("an update without structs or deletes is empty")
	}
	if yupdate.IsEmpty(rootString(1, 0, "x")) {
		t.Error("an update with a struct is not empty")
	}
	if yupdate.IsEmpty(new(builder).uint(0).uint(1).uint(3).uint(1).uint(0).uint(2).bytes()) {
		t.Error("an update with a delete is not empty")
	}
	if yupdate.IsEmpty([]byte{0}) {
		t.Error("a malformed update is not empty")
	}
}

// Client IDs up to JavaScript's Number.MAX_SAFE_INTEGER (2^53-1, which Yjs reads) survive
// merge, state vector and diff.
func TestClientIDsUpTo2To53(t *testing.T) {
	t.Parallel()
	for _, client := range []uint64{1 << 52, 1<<53 - 1} {
		first := rootString(client, 0, "héllo😀") // 7 UTF-16 units
		second := afterString(client, 7, "abc")
		merged, err := yupdate.Merge(second, first)
		if err != nil {
			t.Fatal(err)
		}
		sv, err := yupdate.StateVector(merged)
		if err != nil {
			t.Fatal(err)
		}
		if want := yupdate.EncodeStateVector(map[uint64]uint64{client: 10}); !bytes.Equal(sv, want) {
			t.Fatalf("StateVector = %x, want %x", sv, want)
		}
		diff, err := yupdate.Diff(merged, yupdate.EncodeStateVector(map[uint64]uint64{client: 7}))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(diff, second) {
			t.Errorf("Diff from clock 7 = %x, want %x", diff, second)
		}
	}
}

// Cutting a text struct inside a surrogate pair writes U+FFFD for the half left over, as Yjs
// does, and keeps the lengths in UTF-16 units.
func TestDiffCutsSurrogatePair(t *testing.T) {
	t.Parallel()
	update := rootString(5, 0, "a😀b") // units: a, high, low, b
	cases := []struct {
		clock uint64
		want  string
	}{
		{1, "😀b"},
		{2, "\uFFFDb"}, // the cut falls between the halves of 😀
		{3, "b"},
	}
	for _, c := range cases {
		got, err := yupdate.Diff(update, yupdate.EncodeStateVector(map[uint64]uint64{5: c.clock}))
		if err != nil {
			t.Fatal(err)
		}
		want := section(1, 5, c.clock).byte(4 | 0x80).uint(5).uint(c.clock - 1).str(c.want).uint(0).bytes()
		if !bytes.Equal(got, want) {
			t.Errorf("Diff at clock %d = %x, want %x", c.clock, got, want)
		}
		if err := yupdate.Validate(got); err != nil {
			t.Errorf("Diff at clock %d is invalid: %v", c.clock, err)
		}
	}
}

// Merging an update that overlaps what was merged already cuts it where the known part ends.
func TestMergeCutsOverlap(t *testing.T) {
	t.Parallel()
	whole := rootString(9, 0, "abcdef")
	tail, err := yupdate.Diff(whole, yupdate.EncodeStateVector(map[uint64]uint64{9: 2}))
	if err != nil {
		t.Fatal(err)
	}
	head := rootString(9, 0, "ab")
	merged, err := yupdate.Merge(head, tail, whole)
	if err != nil {
		t.Fatal(err)
	}
	want := section(2, 9, 0).byte(4).uint(1).str("t").str("ab").
		byte(4 | 0x80).uint(9).uint(1).str("cdef").uint(0).bytes()
	if !bytes.Equal(merged, want) {
		t.Errorf("Merge = %x, want %x", merged, want)
	}
	// A gap becomes a Skip, and the state vector stops before it.
	gappy, err := yupdate.Merge(head, afterString(9, 4, "ef"))
	if err != nil {
		t.Fatal(err)
	}
	wantGap := section(3, 9, 0).byte(4).uint(1).str("t").str("ab").byte(10).uint(2).
		byte(4 | 0x80).uint(9).uint(3).str("ef").uint(0).bytes()
	if !bytes.Equal(gappy, wantGap) {
		t.Errorf("Merge with a gap = %x, want %x", gappy, wantGap)
	}
	if sv, _ := yupdate.StateVector(gappy); !bytes.Equal(sv, yupdate.EncodeStateVector(map[uint64]uint64{9: 2})) {
		t.Errorf("StateVector over a gap = %x", sv)
	}
}

func TestMergeJoinsDeleteSets(t *testing.T) {
	t.Parallel()
	ds := func(client uint64, ranges ...uint64) []byte {
		b := new(builder).uint(0).uint(1).uint(client).uint(uint64(len(ranges) / 2))
		for _, r := range ranges {
			b.uint(r)
		}
		return b.bytes()
	}
	merged, err := yupdate.Merge(ds(3, 5, 2, 0, 1), ds(3, 1, 1, 7, 3), ds(4, 0, 1))
	if err != nil {
		t.Fatal(err)
	}
	// Client 4 first (descending); client 3's ranges sorted and joined: [0,2) [5,10).
	want := new(builder).uint(0).uint(2).uint(4).uint(1).uint(0).uint(1).uint(3).uint(2).uint(0).uint(2).uint(5).uint(5).bytes()
	if !bytes.Equal(merged, want) {
		t.Errorf("merged delete set = %x, want %x", merged, want)
	}
}

func TestStateVectorCodec(t *testing.T) {
	t.Parallel()
	sv := map[uint64]uint64{1: 5, 1<<53 - 1: 1, 1 << 52: 7, 300: 0}
	enc := yupdate.EncodeStateVector(sv)
	want := new(builder).uint(4).uint(1<<53 - 1).uint(1).uint(1 << 52).uint(7).uint(300).uint(0).uint(1).uint(5).bytes()
	if !bytes.Equal(enc, want) {
		t.Errorf("EncodeStateVector = %x, want %x (clients descending)", enc, want)
	}
	dec, err := yupdate.DecodeStateVector(enc)
	if err != nil || len(dec) != len(sv) {
		t.Fatalf("DecodeStateVector = %v, %v", dec, err)
	}
	for c, k := range sv {
		if dec[c] != k {
			t.Errorf("client %d: clock %d, want %d", c, dec[c], k)
		}
	}
	for name, bad := range map[string][]byte{
		"empty":          nil,
		"truncated pair": {1, 5},
		"count too big":  {0xff, 0xff, 0x03, 1, 1},
		"trailing bytes": {0, 0},
		"overlong":       {0x80, 0x00},
		"client 2^53":    new(builder).uint(1).uint(1 << 53).uint(1).bytes(),
		"client 2^64-1":  new(builder).uint(1).uint(math.MaxUint64).uint(1).bytes(),
		"clock 2^53":     new(builder).uint(1).uint(1).uint(1 << 53).bytes(),
	} {
		if _, err := yupdate.DecodeStateVector(bad); !errors.Is(err, yupdate.ErrMalformed) {
			t.Errorf("%s: DecodeStateVector(%x) = %v", name, bad, err)
		}
	}
}

func TestMalformedUpdates(t *testing.T) {
	t.Parallel()
	item := func(info byte, content ...byte) []byte {
		return section(1, 1, 0).byte(info).uint(1).str("t").raw(content...).uint(0).bytes()
	}
	huge := lib0.AppendVarUint(nil, 1<<40)
	cases := map[string][]byte{
		"empty input":               nil,
		"no delete set":             {0},
		"trailing bytes":            {0, 0, 0},
		"huge client count":         append(huge, 0),
		"huge struct count":         new(builder).uint(1).raw(huge...).uint(1).uint(0).bytes(),
		"huge delete count":         new(builder).uint(0).uint(1).uint(1).raw(huge...).bytes(),
		"truncated struct":          section(1, 1, 0).byte(4).bytes(),
		"unknown content 11":        item(11, 0),
		"unknown content 31":        item(31, 0),
		"skip as item content":      item(10|0x20, 0),
		"unknown shared type":       item(7, 7),
		"xml element without name":  item(7, 3),
		"string not utf8":           item(4, 2, 0xc3, 0x28),
		"string with surrogate":     item(4, 3, 0xed, 0xa0, 0x80),
		"empty string":              item(4, 0),
		"zero-length deleted":       item(1, 0),
		"zero-length json":          item(2, 0),
		"json not json":             item(2, 1, 3, '{', 'x', '}'),
		"embed not json":            item(5, 1, '{'),
		"format value not json":     item(6, 1, 'k', 2, 'n', 'o'),
		"any unknown tag":           item(8, 1, 99),
		"any count beyond input":    item(8, 0xff, 0xff, 0x03),
		"subdoc options not object": item(9, 1, 'g', lib0.AnyNull),
		"gc of length 0":            section(1, 1, 0).byte(0).uint(0).uint(0).bytes(),
		"skip of length 0":          section(1, 1, 0).byte(10).uint(0).uint(0).bytes(),
		"clock beyond 2^53-1":       section(1, 1, 1<<53-5).byte(0).uint(5).uint(0).bytes(),
		"clock 2^64-2":              section(1, 1, math.MaxUint64-1).byte(0).uint(5).uint(0).bytes(),
		"client 2^53":               rootString(1<<53, 0, "x"),
		"client 2^64-1":             rootString(math.MaxUint64, 0, "x"),
		"origin client 2^53":        section(1, 1, 0).byte(4 | 0x80).uint(1 << 53).uint(0).str("x").uint(0).bytes(),
		"any int beyond 2^53-1":     item(8, 1, lib0.AnyInt, 0x80|0x3f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01),
		"delete range beyond 2^53":  new(builder).uint(0).uint(1).uint(1).uint(1).uint(1<<53 - 1).uint(2).bytes(),
		"delete range overflow":     new(builder).uint(0).uint(1).uint(1).uint(1).uint(math.MaxUint64).uint(2).bytes(),
		"delete client 2^64-1":      new(builder).uint(0).uint(1).uint(math.MaxUint64).uint(1).uint(0).uint(1).bytes(),
		"parent key not utf8":       section(1, 1, 0).byte(4).uint(1).raw(1, 0xff).str("x").uint(0).bytes(),
		"parentSub truncated":       section(1, 1, 0).byte(8|0x20).uint(1).str("m").raw(5, 'a').bytes(),
		"origin truncated":          section(1, 1, 0).byte(4 | 0x80).uint(1).bytes(),
		"overlong varuint":          {0x80, 0x00, 0x00},
		"client listed twice":       dupSections(),
		"clients ascending":         unsortedSections(),
		"origin after the item":     forwardOrigin(0x80),
		"right origin after item":   forwardOrigin(0x40),
		"origin is the item":        section(1, 1, 0).byte(4 | 0x80).uint(1).uint(0).str("x").uint(0).bytes(),
		"parent after the item":     forwardParent(),
	}
	for name, u := range cases {
		if err := yupdate.Validate(u); !errors.Is(err, yupdate.ErrMalformed) {
			t.Errorf("%s: Validate(%x) = %v, want ErrMalformed", name, u, err)
			continue
		}
		if _, err := yupdate.Merge(u, []byte{0, 0}); !errors.Is(err, yupdate.ErrMalformed) {
			t.Errorf("%s: Merge = %v", name, err)
		}
		if _, err := yupdate.Merge([]byte{0, 0}, u); !errors.Is(err, yupdate.ErrMalformed) {
			t.Errorf("%s: Merge (second) = %v", name, err)
		}
		if _, err := yupdate.StateVector(u); !errors.Is(err, yupdate.ErrMalformed) {
			t.Errorf("%s: StateVector = %v", name, err)
		}
		if _, err := yupdate.Diff(u, []byte{0}); !errors.Is(err, yupdate.ErrMalformed) {
			t.Errorf("%s: Diff = %v", name, err)
		}
	}
	if _, err := yupdate.Diff([]byte{0, 0}, []byte{1}); !errors.Is(err, yupdate.ErrMalformed) {
		t.Errorf("Diff with a bad state vector = %v", err)
	}
}

// Every strict prefix of a real update is refused: nothing is half-applied.
func TestTruncatedUpdatesAreRefused(t *testing.T) {
	t.Parallel()
	for _, s := range loadFixtures(t).Scenarios {
		u := s.input(t, len(s.Inputs)-1)
		for i := 0; i < len(u); i += 1 + len(u)/200 {
			if err := yupdate.Validate(u[:i]); !errors.Is(err, yupdate.ErrMalformed) {
				t.Fatalf("%s: prefix of %d/%d bytes: %v", s.Name, i, len(u), err)
			}
		}
	}
}

func TestInputsAreNotModifiedOrAliased(t *testing.T) {
	t.Parallel()
	s := loadFixtures(t).Scenarios[0]
	ins := s.inputs(t, seq(len(s.Inputs)))
	copies := make([][]byte, len(ins))
	for i := range ins {
		copies[i] = append([]byte{}, ins[i]...)
	}
	merged, err := yupdate.Merge(ins...)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := yupdate.Diff(merged, []byte{0}); err != nil {
		t.Fatal(err)
	}
	for i := range ins {
		if !bytes.Equal(ins[i], copies[i]) {
			t.Fatalf("input %d modified", i)
		}
	}
	single, _ := yupdate.Merge(ins[0])
	single[0] ^= 0xff
	if ins[0][0] != copies[0][0] {
		t.Fatal("Merge of one update returned the input itself")
	}
}
