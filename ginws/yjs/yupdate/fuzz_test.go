package yupdate_test

import (
	"bytes"
	"errors"
	"maps"
	"slices"
	"testing"

	"ginws.dev/ginws/yjs/internal/jstest"
	"ginws.dev/ginws/yjs/yupdate"
)

// FuzzUpdate feeds arbitrary updates and state vectors to every function; a second input that
// is a valid update serves as a document for Novel. Seeds: the updates and state vectors real
// Yjs documents produced (testdata/fixtures.json), and pairs of a scenario's whole document and
// a part of it. Run with
//
//	go test -run '^$' -fuzz '^FuzzUpdate$' -fuzztime 60s ./ginws/yjs/yupdate
//
// Invariants: nothing panics or hangs; malformed input is ErrMalformed everywhere; for valid
// input every function succeeds and every output is itself a valid update; a document merged
// with what Novel keeps of an update has the state vector and deletions it has merged with the
// whole update (see checkNovel).
func FuzzUpdate(f *testing.F) {
	for _, s := range loadFixtures(f).Scenarios {
		for i, in := range s.Inputs {
			if len(in) > 4096 {
				continue // keep the corpus quick to run
			}
			f.Add(jstest.Unhex(f, in), jstest.Unhex(f, s.StateVectors[i]))
		}
		for _, st := range s.States {
			f.Add(jstest.Unhex(f, s.Inputs[0]), jstest.Unhex(f, st.SV))
		}
	}
	// Pairs of updates, for Novel between a document and a client that each hold part of it:
	// the whole of a scenario and the merge of a subset (see TestNovelWithYjs).
	for _, s := range loadFixtures(f).Scenarios {
		full, err := yupdate.Merge(s.inputs(f, seq(s.Updates))...)
		if err != nil || len(full) > 4096 {
			continue
		}
		for _, st := range s.States {
			if part, err := yupdate.Merge(s.inputs(f, st.Subset)...); err == nil {
				f.Add(full, part)
			}
		}
	}
	f.Add([]byte{0, 0}, []byte{0})
	f.Fuzz(func(t *testing.T, update, sv []byte) {
		err := yupdate.Validate(update)
		_, svErr := yupdate.DecodeStateVector(sv)
		if err != nil {
			if !errors.Is(err, yupdate.ErrMalformed) {
				t.Fatalf("Validate error %v does not wrap ErrMalformed", err)
			}
			if _, err := yupdate.Merge(update, []byte{0, 0}); !errors.Is(err, yupdate.ErrMalformed) {
				t.Fatalf("Merge accepted what Validate refused: %v", err)
			}
			if _, err := yupdate.StateVector(update); !errors.Is(err, yupdate.ErrMalformed) {
				t.Fatalf("StateVector accepted what Validate refused: %v", err)
			}
			if yupdate.IsEmpty(update) {
				t.Fatal("IsEmpty of a malformed update")
			}
			if _, err := yupdate.Compact(update); !errors.Is(err, yupdate.ErrMalformed) {
				t.Fatalf("Compact accepted what Validate refused: %v", err)
			}
			return
		}
		own, err := yupdate.StateVector(update)
		if err != nil {
			t.Fatalf("StateVector of a valid update: %v", err)
		}
		if _, err := yupdate.DecodeStateVector(own); err != nil {
			t.Fatalf("StateVector wrote %x: %v", own, err)
		}
		merged, err := yupdate.Merge(update, update, []byte{0, 0})
		if err != nil {
			t.Fatalf("Merge of a valid update: %v", err)
		}
		if err := yupdate.Validate(merged); err != nil {
			t.Fatalf("Merge wrote an invalid update %x: %v", merged, err)
		}
		// Compact keeps the state vector and is idempotent.
		compacted, err := yupdate.Compact(merged)
		if err != nil {
			t.Fatalf("Compact of a valid update: %v", err)
		}
		if err := yupdate.Validate(compacted); err != nil {
			t.Fatalf("Compact wrote an invalid update %x: %v", compacted, err)
		}
		svM, _ := yupdate.StateVector(merged)
		if svC, _ := yupdate.StateVector(compacted); !bytes.Equal(svM, svC) {
			t.Fatalf("Compact changed the state vector %x -> %x", svM, svC)
		}
		if again, err := yupdate.Compact(compacted); err != nil || !bytes.Equal(again, compacted) {
			t.Fatalf("Compact is not idempotent: %x -> %x, %v", compacted, again, err)
		}
		vs := [][]byte{own, {0}}
		if svErr == nil {
			vs = append(vs, sv)
		}
		for _, v := range vs {
			d, err := yupdate.Diff(update, v)
			if err != nil {
				t.Fatalf("Diff of a valid update against %x: %v", v, err)
			}
			if err := yupdate.Validate(d); err != nil {
				t.Fatalf("Diff wrote an invalid update %x: %v", d, err)
			}
		}
		// Novel writes valid updates, and a document gains from it what it gains from the
		// whole update.
		for _, doc := range [][]byte{merged, {0, 0}} {
			checkNovel(t, update, doc)
		}
		// The second input, when it is an update, as a document that holds part of the first
		// (or other things), and the other way round.
		if yupdate.Validate(sv) == nil {
			checkNovel(t, update, sv)
			checkNovel(t, sv, update)
		}
		// Diff against the empty state keeps everything but leading gaps: merging it back
		// changes nothing.
		all, _ := yupdate.Diff(merged, []byte{0})
		again, err := yupdate.Merge(merged, all)
		if err != nil {
			t.Fatal(err)
		}
		if yupdate.IsEmpty(update) && !bytes.Equal(again, []byte{0, 0}) {
			t.Fatalf("merging empty updates gave %x", again)
		}
	})
}

// checkNovel fails t unless Novel(update, doc) is nil or a valid update, and doc merged with it
// has the state vector and the deletions that doc merged with update has. The state vectors are
// compared byte for byte: a valid update lists its clients in descending order, each once (see
// TestRefusesWhatYjsCannotHold), so Merge writes each client once and the state vector lists
// each once, in that order.
func checkNovel(t *testing.T, update, doc []byte) {
	t.Helper()
	n, err := yupdate.Novel(update, doc)
	if err != nil {
		t.Fatalf("Novel of valid updates: %v", err)
	}
	if n == nil {
		n = []byte{0, 0}
	} else if err := yupdate.Validate(n); err != nil {
		t.Fatalf("Novel wrote an invalid update %x: %v", n, err)
	}
	withNovel, withUpdate := mustMergeF(t, doc, n), mustMergeF(t, doc, update)
	got, want := svOf(t, withNovel), svOf(t, withUpdate)
	if !bytes.Equal(got, want) {
		t.Fatalf("doc + Novel has state vector %x, doc + update %x", got, want)
	}
	gotDS, wantDS := deletedOf(t, withNovel), deletedOf(t, withUpdate)
	if !maps.EqualFunc(gotDS, wantDS, slices.Equal) {
		t.Fatalf("doc + Novel deletes %v, doc + update %v", gotDS, wantDS)
	}
}

func deletedOf(t *testing.T, u []byte) map[uint64][][2]uint64 {
	t.Helper()
	ds, err := yupdate.DeletedRanges(u)
	if err != nil {
		t.Fatal(err)
	}
	return ds
}

func mustMergeF(t *testing.T, us ...[]byte) []byte {
	t.Helper()
	m, err := yupdate.Merge(us...)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func svOf(t *testing.T, u []byte) []byte {
	t.Helper()
	sv, err := yupdate.StateVector(u)
	if err != nil {
		t.Fatal(err)
	}
	return sv
}
