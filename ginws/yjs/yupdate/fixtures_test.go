package yupdate_test

// testdata/fixtures.json is written by the real yjs. Regenerate it (after changing the
// generator or the pinned yjs version) with
//
//	cd ginws/yjs/testdata/js && node gen/yupdate-fixtures.mjs > ../../yupdate/testdata/fixtures.json
//
// TestFixturesAreCurrent checks, when node and the npm workspace are present, that the committed
// file is what the generator writes today.

import (
	"bytes"
	"fmt"
	"sync"
	"testing"

	"ginws.dev/ginws/yjs/internal/jstest"
	"ginws.dev/ginws/yjs/yupdate"
)

type fixtureFile struct {
	Yjs       string     `json:"yjs"`
	Scenarios []scenario `json:"scenarios"`
}

type scenario struct {
	Name         string            `json:"name"`
	Roots        map[string]string `json:"roots"`
	Updates      int               `json:"updates"` // the first Updates inputs are what the documents emitted
	Inputs       []string          `json:"inputs"`
	StateVectors []string          `json:"stateVectors"` // Y.encodeStateVectorFromUpdate of each input
	Expected     string            `json:"expected"`     // the document after all updates
	ExpectedSV   string            `json:"expectedSV"`
	Merges       []struct {
		Inputs []int  `json:"inputs"`
		Result string `json:"result"`
	} `json:"merges"`
	Diffs []struct {
		Input  int    `json:"input"`
		SV     string `json:"sv"`
		Result string `json:"result"`
	} `json:"diffs"`
	States []struct {
		Subset []int  `json:"subset"`
		SV     string `json:"sv"`
	} `json:"states"`
}

// fixtures holds the file once loaded: tests that read it run in parallel.
var fixtures struct {
	once sync.Once
	f    *fixtureFile
	err  error
}

func loadFixtures(t testing.TB) *fixtureFile {
	t.Helper()
	fixtures.once.Do(func() {
		var f fixtureFile
		if fixtures.err = jstest.ReadJSON("testdata/fixtures.json", &f); fixtures.err != nil {
			return
		}
		if len(f.Scenarios) < 10 {
			fixtures.err = fmt.Errorf("fixture file has only %d scenarios", len(f.Scenarios))
			return
		}
		fixtures.f = &f
	})
	if fixtures.err != nil {
		t.Fatal(fixtures.err)
	}
	return fixtures.f
}

func (s *scenario) input(t testing.TB, i int) []byte { return jstest.Unhex(t, s.Inputs[i]) }

func (s *scenario) inputs(t testing.TB, ix []int) [][]byte {
	out := make([][]byte, len(ix))
	for j, i := range ix {
		out[j] = s.input(t, i)
	}
	return out
}

func TestGoldenValidate(t *testing.T) {
	t.Parallel()
	for _, s := range loadFixtures(t).Scenarios {
		for i := range s.Inputs {
			if err := yupdate.Validate(s.input(t, i)); err != nil {
				t.Errorf("%s input %d: %v", s.Name, i, err)
			}
		}
	}
}

func TestGoldenStateVector(t *testing.T) {
	t.Parallel()
	n := 0
	for _, s := range loadFixtures(t).Scenarios {
		for i := range s.Inputs {
			got, err := yupdate.StateVector(s.input(t, i))
			if err != nil {
				t.Fatalf("%s input %d: %v", s.Name, i, err)
			}
			if want := jstest.Unhex(t, s.StateVectors[i]); !bytes.Equal(got, want) {
				t.Errorf("%s input %d: StateVector = %x, yjs %x", s.Name, i, got, want)
			}
			n++
		}
	}
	t.Logf("%d state vectors byte-equal to yjs", n)
}

func TestGoldenMerge(t *testing.T) {
	t.Parallel()
	n := 0
	for _, s := range loadFixtures(t).Scenarios {
		for _, m := range s.Merges {
			got, err := yupdate.Merge(s.inputs(t, m.Inputs)...)
			if err != nil {
				t.Fatalf("%s merge %v: %v", s.Name, m.Inputs, err)
			}
			if want := jstest.Unhex(t, m.Result); !bytes.Equal(got, want) {
				t.Errorf("%s merge %v:\n got %x\nyjs %x", s.Name, m.Inputs, got, want)
			}
			n++
		}
	}
	t.Logf("%d merges byte-equal to yjs", n)
}

func TestGoldenDiff(t *testing.T) {
	t.Parallel()
	n := 0
	for _, s := range loadFixtures(t).Scenarios {
		for _, d := range s.Diffs {
			got, err := yupdate.Diff(s.input(t, d.Input), jstest.Unhex(t, d.SV))
			if err != nil {
				t.Fatalf("%s diff of input %d against %s: %v", s.Name, d.Input, d.SV, err)
			}
			if want := jstest.Unhex(t, d.Result); !bytes.Equal(got, want) {
				t.Errorf("%s diff of input %d against %s:\n got %x\nyjs %x", s.Name, d.Input, d.SV, got, want)
			}
			n++
		}
	}
	t.Logf("%d diffs byte-equal to yjs", n)
}
