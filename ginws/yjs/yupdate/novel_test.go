package yupdate_test

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"ginws.dev/ginws/yjs/internal/jstest"
	"ginws.dev/ginws/yjs/yupdate"
)

// A client's full sync step 2 after deletions is never empty (Yjs writes its whole delete set),
// but it adds nothing to a document that already holds it; what a partial document lacks is
// exactly what Novel keeps (checked with the real yjs: the partial document plus Novel's result
// equals the whole).
func TestNovelWithYjs(t *testing.T) {
	t.Parallel()
	needNode(t)
	var cases []checkCase
	withDeletes := 0
	for _, s := range loadFixtures(t).Scenarios {
		emitted := s.inputs(t, seq(s.Updates))
		full := mustMerge(t, emitted...)
		// The step 2 of a client that has everything, to a server that has everything.
		if n, err := yupdate.Novel(full, full); err != nil || n != nil {
			t.Errorf("%s: Novel(full, full) = %x, %v; want nil", s.Name, n, err)
		}
		sv, err := yupdate.StateVector(full)
		if err != nil {
			t.Fatal(err)
		}
		if d, err := yupdate.Diff(full, sv); err == nil && !yupdate.IsEmpty(d) {
			withDeletes++ // Diff alone would relay this scenario's delete set again
		}
		for _, st := range s.States {
			part := mustMerge(t, s.inputs(t, st.Subset)...)
			// What the client has, the server has: nothing new.
			if n, err := yupdate.Novel(part, full); err != nil || n != nil {
				t.Errorf("%s: Novel(subset %v, full) = %x, %v; want nil", s.Name, st.Subset, n, err)
			}
			// A server with the subset learns the rest.
			n, err := yupdate.Novel(full, part)
			if err != nil {
				t.Fatal(err)
			}
			var cand [][]byte
			if n != nil {
				if err := yupdate.Validate(n); err != nil {
					t.Fatalf("%s: Novel wrote an invalid update: %v", s.Name, err)
				}
				if len(n) > len(full)+8 {
					t.Errorf("%s: Novel is larger than the update it filters", s.Name)
				}
				cand = append(cand, n)
			}
			cases = append(cases, checkCase{Name: s.Name + "/novel", Roots: s.Roots,
				Base: hexAll(s.inputs(t, st.Subset)...), Candidate: hexAll(cand...), Expect: hexAll(emitted...)})
		}
	}
	if withDeletes == 0 {
		t.Fatal("no fixture scenario has deletions: the test proves nothing about delete sets")
	}
	runChecker(t, cases)
}

// Deleted ranges the document holds are cut out of the update's, to the unit.
func TestNovelSubtractsDeleteSet(t *testing.T) {
	t.Parallel()
	doc := new(builder).uint(0).uint(2).
		uint(9).uint(1).uint(0).uint(5).                        // client 9: [0,5)
		uint(3).uint(2).uint(2).uint(2).uint(6).uint(1).bytes() // client 3: [2,4) [6,7)
	update := new(builder).uint(0).uint(2).
		uint(3).uint(1).uint(0).uint(10).       // client 3: [0,10)
		uint(9).uint(1).uint(1).uint(3).bytes() // client 9: [1,4), all known
	got, err := yupdate.Novel(update, doc)
	if err != nil {
		t.Fatal(err)
	}
	want := new(builder).uint(0).uint(1).uint(3).uint(3).uint(0).uint(2).uint(4).uint(2).uint(7).uint(3).bytes()
	if !bytes.Equal(got, want) {
		t.Errorf("Novel = %x, want %x", got, want)
	}
	// Structs at or below the document's state vector go; a struct straddling it is cut.
	known := rootString(5, 0, "abc")
	both, err := yupdate.Merge(known, afterString(5, 3, "de"))
	if err != nil {
		t.Fatal(err)
	}
	got, err = yupdate.Novel(both, known)
	if err != nil {
		t.Fatal(err)
	}
	if want := afterString(5, 3, "de"); !bytes.Equal(got, want) {
		t.Errorf("Novel of structs = %x, want %x", got, want)
	}
	for name, in := range map[string][2][]byte{
		"malformed update": {{0}, known},
		"malformed doc":    {known, {0}},
		"poison doc":       {known, jstest.Unhex(t, poisonHex)},
	} {
		if _, err := yupdate.Novel(in[0], in[1]); !errors.Is(err, yupdate.ErrMalformed) {
			t.Errorf("%s: Novel = %v, want ErrMalformed", name, err)
		}
	}
}

// dupSections lists client 7 twice, both sections from clock 0: "a", then "xy" (root "t").
func dupSections() []byte {
	return new(builder).uint(2).
		uint(1).uint(7).uint(0).byte(4).uint(1).str("t").str("a").
		uint(1).uint(7).uint(0).byte(4).uint(1).str("t").str("xy").
		uint(0).bytes()
}

// unsortedSections lists client 1 before client 7.
func unsortedSections() []byte {
	return new(builder).uint(2).
		uint(1).uint(1).uint(0).byte(4).uint(1).str("t").str("a").
		uint(1).uint(7).uint(1).byte(4).uint(1).str("t").str("b").
		uint(0).bytes()
}

// forwardOrigin is client 7's "a" at clock 0 with an origin (info 0x80) or right origin (0x40)
// of its own clock 1, then "b" at clock 1.
func forwardOrigin(info byte) []byte {
	return section(2, 7, 0).byte(4 | info).uint(7).uint(1).str("a").
		byte(4).uint(1).str("t").str("b").uint(0).bytes()
}

// forwardParent is client 7's "a" at clock 0 in the type at its own clock 1, then that type
// (a Y.Array named "t").
func forwardParent() []byte {
	return section(2, 7, 0).byte(4).uint(0).uint(7).uint(1).str("a").
		byte(7).uint(1).str("t").uint(0).uint(0).bytes()
}

// FuzzUpdate reported Novel as inventing content: for testdata/fuzz/FuzzUpdate/ac005ca208e4b609,
// which lists client 7 in two sections from clock 0, Novel (and Diff) wrote the second section on
// from the first one's end, so the structs got clocks they never had and client 7's state reached
// 49 where its author was at 47; a peer holding that would drop the author's real structs 47 and
// 48 as known. Y.diffUpdate does exactly the same, and Yjs has no consistent reading of such an
// update at all: Y.applyUpdate keeps only a client's last section, Y.mergeUpdates its first, and
// Y.diffUpdate joins them. The first section of that input also has items whose origin is a later
// clock of their own client, which makes Y.applyUpdate throw (as does such a parent). Both are
// refused now (ErrMalformed), as are clients out of descending order (Merge would repeat them,
// see startSection). The bytes of the Yjs answers below were taken from yjs 13.6.33.
func TestRefusesWhatYjsCannotHold(t *testing.T) {
	t.Parallel()
	roots := map[string]string{"t": "text"}
	dup := dupSections()
	// Y.mergeUpdates([dup, {0, 0}]): "a" from the first section, "y" cut from the second: "ay".
	yMerge := section(2, 7, 0).byte(4).uint(1).str("t").str("a").byte(4 | 0x80).uint(7).uint(0).str("y").uint(0).bytes()
	// Y.diffUpdate(dup, {}): one section, "xy" moved to clocks 1 and 2: "xya", state 7:3.
	yDiff := section(2, 7, 0).byte(4).uint(1).str("t").str("a").byte(4).uint(1).str("t").str("xy").uint(0).bytes()
	results := checkWithYjs(t, []checkCase{
		{Name: "applyUpdate vs mergeUpdates", Roots: roots, Candidate: hexAll(dup), Expect: hexAll(yMerge)},
		{Name: "applyUpdate vs diffUpdate", Roots: roots, Candidate: hexAll(dup), Expect: hexAll(yDiff)},
		{Name: "origin after the item", Roots: roots, Candidate: hexAll(forwardOrigin(0x80))},
		{Name: "right origin after the item", Roots: roots, Candidate: hexAll(forwardOrigin(0x40))},
		{Name: "parent after the item", Roots: map[string]string{"t": "array"}, Candidate: hexAll(forwardParent())},
	})
	for _, r := range results[:2] {
		if r.OK || r.Error != "" {
			t.Errorf("%s: yjs read the forms alike (%+v): refusing a repeated client would be unnecessary", r.Name, r)
		}
	}
	for _, r := range results[2:] {
		if r.OK || !strings.Contains(r.Error, "TypeError") {
			t.Errorf("%s: yjs applied it (%+v): refusing it would be unnecessary", r.Name, r)
		}
	}
	for name, u := range map[string][]byte{"repeated client": dup, "unsorted clients": unsortedSections(), "forward origin": forwardOrigin(0x80), "forward parent": forwardParent()} {
		if err := yupdate.Validate(u); !errors.Is(err, yupdate.ErrMalformed) {
			t.Errorf("%s: Validate = %v, want ErrMalformed", name, err)
		}
		if _, err := yupdate.Novel(u, []byte{0, 0}); !errors.Is(err, yupdate.ErrMalformed) {
			t.Errorf("%s: Novel = %v, want ErrMalformed", name, err)
		}
		if _, err := yupdate.Novel(rootString(3, 0, "z"), u); !errors.Is(err, yupdate.ErrMalformed) {
			t.Errorf("%s: Novel (as the document) = %v, want ErrMalformed", name, err)
		}
		if _, err := yupdate.Compact(u); !errors.Is(err, yupdate.ErrMalformed) {
			t.Errorf("%s: Compact = %v, want ErrMalformed", name, err)
		}
	}
}
