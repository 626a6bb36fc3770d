package yupdate_test

import (
	"bytes"
	"errors"
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

// FuzzUpdate reported Novel as losing data for an update whose client sections are out of
// Yjs's order (client 1 before client 7) and that has a gap (client 7 starts at clock 1); see
// testdata/fuzz/FuzzUpdate/novel-unsorted-client-sections. It loses nothing: the document is
// the update merged with itself, so it holds all of it, and Novel keeps only what it cannot
// prove known. Merged with the document, Novel's answer and the whole update give the same
// state vector once decoded, and the same document in the real yjs; only the encoded state
// vectors differ, in how often they repeat client 1, because Merge (like Y.mergeUpdates) keeps
// a copy of an out-of-order section per input.
func TestNovelUnsortedSections(t *testing.T) {
	t.Parallel()
	update := new(builder).uint(2).
		uint(1).uint(1).uint(0).byte(4).uint(1).str("t").str("a"). // client 1: "a" at clock 0
		uint(1).uint(7).uint(1).byte(4).uint(1).str("t").str("b"). // client 7: "b" at clock 1
		uint(0).bytes()
	doc := mustMerge(t, update, update)
	n, err := yupdate.Novel(update, doc)
	if err != nil {
		t.Fatal(err)
	}
	// Client 1 is known to the document; client 7's struct lies beyond a gap, so Novel cannot
	// prove it known and keeps it.
	if want := section(1, 7, 1).byte(4).uint(1).str("t").str("b").uint(0).bytes(); !bytes.Equal(n, want) {
		t.Fatalf("Novel = %x, want %x", n, want)
	}
	got, want := svOf(t, mustMerge(t, doc, n)), svOf(t, mustMerge(t, doc, update))
	if bytes.Equal(got, want) {
		t.Errorf("doc + Novel and doc + update both have state vector %x: the encodings were expected to repeat client 1 a different number of times", got)
	}
	checkNovel(t, update, doc)
	runChecker(t, []checkCase{{Name: "unsorted-sections", Roots: map[string]string{"t": "text"},
		Base: hexAll(doc), Candidate: hexAll(n), Expect: hexAll(doc, update)}})
}
