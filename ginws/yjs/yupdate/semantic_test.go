package yupdate_test

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"math/rand/v2"
	"os/exec"
	"testing"

	"ginws.dev/ginws/yjs/internal/jstest"
	"ginws.dev/ginws/yjs/yupdate"
)

// jsDir is the pinned npm workspace with yjs; the checker and fixture generator live in gen/.
var jsDir = jstest.Dir()

// needNode returns the node binary, or skips the test (fails it under CI=true) when node or
// the npm workspace is missing.
func needNode(t *testing.T) string { return jstest.Node(t, "yjs") }

type checkCase struct {
	Name      string            `json:"name"`
	Roots     map[string]string `json:"roots"`
	Base      []string          `json:"base"`
	Candidate []string          `json:"candidate"`
	Expect    []string          `json:"expect"`
}

type checkResult struct {
	Name   string `json:"name"`
	OK     bool   `json:"ok"`
	Got    string `json:"got"`
	Want   string `json:"want"`
	GotSV  string `json:"gotSV"`
	WantSV string `json:"wantSV"`
	Error  string `json:"error"`
}

// runChecker hands the cases to the real yjs and fails the test for every case whose document
// or state vector differs.
func runChecker(t *testing.T, cases []checkCase) {
	t.Helper()
	results := checkWithYjs(t, cases)
	failed := 0
	for _, r := range results {
		if !r.OK {
			failed++
			if failed <= 10 {
				t.Errorf("%s: yjs disagrees\n got %s sv %s\nwant %s sv %s\n%s", r.Name, r.Got, r.GotSV, r.Want, r.WantSV, r.Error)
			}
		}
	}
	t.Logf("%d cases checked with yjs, %d failed", len(cases), failed)
}

// checkWithYjs runs the node checker on cases and returns its verdicts.
func checkWithYjs(t *testing.T, cases []checkCase) []checkResult {
	t.Helper()
	node := needNode(t)
	in, err := json.Marshal(map[string]any{"cases": cases})
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(t.Context(), node, "gen/yupdate-check.mjs")
	cmd.Dir = jsDir
	cmd.Stdin = bytes.NewReader(in)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("checker: %v\n%s", err, stderr.String())
	}
	var results []checkResult
	if err := json.Unmarshal(out, &results); err != nil {
		t.Fatalf("checker output: %v", err)
	}
	if len(results) != len(cases) {
		t.Fatalf("checker answered %d of %d cases", len(results), len(cases))
	}
	return results
}

func hexAll(bs ...[]byte) []string {
	out := make([]string, len(bs))
	for i, b := range bs {
		out[i] = hex.EncodeToString(b)
	}
	return out
}

// mustMerge merges or fails the test.
func mustMerge(t *testing.T, us ...[]byte) []byte {
	t.Helper()
	m, err := yupdate.Merge(us...)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestSemanticWithYjs checks with the real yjs what the server relies on: for updates U1..Un
// and a client state S built from any subset of them, applying Diff(Merge(U1..Un), sv(S)) to S
// gives the same document and state vector as applying all of U1..Un. Merges are checked in
// shuffled orders, with duplicates, and merged in trees; diffs against the state vectors of
// real documents and against state vectors Go computes itself from the subset's merge.
func TestSemanticWithYjs(t *testing.T) {
	t.Parallel()
	needNode(t)
	rng := rand.New(rand.NewPCG(1, 2))
	var cases []checkCase
	for _, s := range loadFixtures(t).Scenarios {
		emitted := s.inputs(t, seq(s.Updates))
		all := hexAll(emitted...)
		add := func(name string, base []string, candidate ...[]byte) {
			cases = append(cases, checkCase{Name: s.Name + "/" + name, Roots: s.Roots, Base: base, Candidate: hexAll(candidate...), Expect: all})
		}
		add("merge-in-order", nil, mustMerge(t, emitted...))
		for i := 0; i < 3; i++ {
			shuffled := append([][]byte{}, emitted...)
			rng.Shuffle(len(shuffled), func(a, b int) { shuffled[a], shuffled[b] = shuffled[b], shuffled[a] })
			shuffled = append(shuffled, shuffled[:len(shuffled)/3]...) // duplicates
			add("merge-shuffled", nil, mustMerge(t, shuffled...))
		}
		// A tree of merges: chunks, then chunks of chunks, as a server compacting in steps.
		level := emitted
		for len(level) > 1 {
			var next [][]byte
			for i := 0; i < len(level); i += 3 {
				next = append(next, mustMerge(t, level[i:min(i+3, len(level))]...))
			}
			level = next
		}
		add("merge-tree", nil, level[0])
		merged := mustMerge(t, emitted...)
		for _, st := range s.States {
			base := hexAll(s.inputs(t, st.Subset)...)
			d, err := yupdate.Diff(merged, jstest.Unhex(t, st.SV))
			if err != nil {
				t.Fatal(err)
			}
			add("diff-against-doc-sv", base, d)
			// The server's own view of the client: the state vector of the subset's merge.
			sv, err := yupdate.StateVector(mustMerge(t, s.inputs(t, st.Subset)...))
			if err != nil {
				t.Fatal(err)
			}
			d, err = yupdate.Diff(merged, sv)
			if err != nil {
				t.Fatal(err)
			}
			add("diff-against-merge-sv", base, d)
			// Diff of a merge of diffs: merging overlapping slices must still converge.
			if d2, err := yupdate.Diff(mustMerge(t, d, merged), jstest.Unhex(t, st.SV)); err != nil {
				t.Fatal(err)
			} else {
				add("diff-of-merge-with-diff", base, d2)
			}
		}
	}
	// The benchmark document: 1 000 hand-built updates from two clients.
	typing := typingUpdates(1000)
	roots := map[string]string{"t": "text", "meta": "map"}
	merged := mustMerge(t, typing...)
	half, err := yupdate.StateVector(mustMerge(t, typing[:500]...))
	if err != nil {
		t.Fatal(err)
	}
	diff, err := yupdate.Diff(merged, half)
	if err != nil {
		t.Fatal(err)
	}
	cases = append(cases,
		checkCase{Name: "typing-1000/merge", Roots: roots, Candidate: hexAll(merged), Expect: hexAll(typing...)},
		checkCase{Name: "typing-1000/diff", Roots: roots, Base: hexAll(typing[:500]...), Candidate: hexAll(diff), Expect: hexAll(typing...)})
	runChecker(t, cases)
}

// The checker must notice a wrong answer, or the semantic test proves nothing.
func TestCheckerDetectsDifferences(t *testing.T) {
	t.Parallel()
	s := loadFixtures(t).Scenarios[0]
	emitted := s.inputs(t, seq(s.Updates))
	results := checkWithYjs(t, []checkCase{
		{Name: "missing-last-update", Roots: s.Roots, Candidate: hexAll(mustMerge(t, emitted[:len(emitted)-1]...)), Expect: hexAll(emitted...)},
		{Name: "garbage", Roots: s.Roots, Candidate: []string{"ff"}, Expect: hexAll(emitted...)},
	})
	for _, r := range results {
		if r.OK {
			t.Errorf("%s: the checker saw no difference", r.Name)
		}
	}
}

func seq(n int) []int {
	s := make([]int, n)
	for i := range s {
		s[i] = i
	}
	return s
}

// TestFixturesAreCurrent regenerates the golden fixtures with the pinned yjs and checks that the
// committed file matches, so the fixtures cannot silently drift from the generator.
func TestFixturesAreCurrent(t *testing.T) {
	t.Parallel()
	jstest.FixtureCurrent(t, "yjs", "gen/yupdate-fixtures.mjs", "testdata/fixtures.json")
}
