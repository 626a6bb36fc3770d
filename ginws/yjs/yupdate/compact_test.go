package yupdate_test

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"testing"

	"ginws.dev/ginws/yjs/internal/jstest"
	"ginws.dev/ginws/yjs/yupdate"
)

func mustCompact(t testing.TB, u []byte) []byte {
	t.Helper()
	c, err := yupdate.Compact(u)
	if err != nil {
		t.Fatal(err)
	}
	if err := yupdate.Validate(c); err != nil {
		t.Fatalf("Compact wrote an invalid update %x: %v", c, err)
	}
	return c
}

// Consecutive keystrokes of one client fold into one string item, as in a live document; the
// state vector and the delete set do not change.
func TestCompactJoinsTyping(t *testing.T) {
	t.Parallel()
	const c = 1<<53 - 1 // the largest client ID JavaScript reads: nothing here depends on small IDs
	us := [][]byte{rootString(c, 0, "h"), afterString(c, 1, "é"), afterString(c, 2, "😀"), afterString(c, 4, "中!")}
	del := new(builder).uint(0).uint(1).uint(c).uint(1).uint(1).uint(2).bytes() // deletes clocks 1-2
	merged := mustMerge(t, append(us, del)...)
	got := mustCompact(t, merged)
	// One section, one item: parent "t", the whole string (6 UTF-16 units), then the delete set.
	want := section(1, c, 0).byte(4).uint(1).str("t").str("hé😀中!").uint(1).uint(c).uint(1).uint(1).uint(2).bytes()
	if !bytes.Equal(got, want) {
		t.Fatalf("Compact =\n%x, want\n%x (merged %x)", got, want, merged)
	}
	svM, _ := yupdate.StateVector(merged)
	svC, _ := yupdate.StateVector(got)
	if !bytes.Equal(svM, svC) {
		t.Errorf("state vector changed: %x -> %x", svM, svC)
	}
	// Compacting again changes nothing.
	if again := mustCompact(t, got); !bytes.Equal(again, got) {
		t.Errorf("Compact is not idempotent: %x -> %x", got, again)
	}
	// A diff from the middle of the joined item starts at the cut, with the unit before as origin.
	d, err := yupdate.Diff(got, yupdate.EncodeStateVector(map[uint64]uint64{c: 2}))
	if err != nil {
		t.Fatal(err)
	}
	wantD := section(1, c, 2).byte(4 | 0x80).uint(c).uint(1).str("😀中!").uint(1).uint(c).uint(1).uint(1).uint(2).bytes()
	if !bytes.Equal(d, wantD) {
		t.Errorf("Diff of the compacted update =\n%x, want\n%x", d, wantD)
	}
}

// What Compact must leave apart.
func TestCompactKeepsUnjoinable(t *testing.T) {
	t.Parallel()
	const c = 9
	item := func(info byte, origin *[2]uint64, right *[2]uint64, content func(*builder)) func(*builder) {
		return func(b *builder) {
			if origin != nil {
				info |= 0x80
			}
			if right != nil {
				info |= 0x40
			}
			b.byte(info)
			if origin != nil {
				b.uint(origin[0]).uint(origin[1])
			}
			if right != nil {
				b.uint(right[0]).uint(right[1])
			}
			if origin == nil && right == nil {
				b.uint(1).str("t")
			}
			content(b)
		}
	}
	str := func(s string) func(*builder) { return func(b *builder) { b.str(s) } }
	anyStr := func(s string) func(*builder) { return func(b *builder) { b.uint(1).byte(119).str(s) } }
	deleted := func(n uint64) func(*builder) { return func(b *builder) { b.uint(n) } }
	id := func(client, clock uint64) *[2]uint64 { return &[2]uint64{client, clock} }
	update := func(parts ...func(*builder)) []byte {
		b := section(uint64(len(parts)), c, 0)
		for _, p := range parts {
			p(b)
		}
		return b.uint(0).bytes()
	}
	cases := map[string][]byte{
		"origin elsewhere":        update(item(4, nil, nil, str("ab")), item(4, id(c, 0), nil, str("x"))),
		"origin of another":       update(item(4, nil, nil, str("ab")), item(4, id(3, 1), nil, str("x"))),
		"no origin":               update(item(4, nil, nil, str("ab")), item(4, nil, id(c, 0), str("x"))),
		"different right origin":  update(item(4, nil, id(3, 0), str("ab")), item(4, id(c, 1), id(3, 1), str("x"))),
		"right origin only right": update(item(4, nil, nil, str("ab")), item(4, id(c, 1), id(3, 1), str("x"))),
		"string then deleted":     update(item(4, nil, nil, str("ab")), item(1, id(c, 1), nil, deleted(2))),
		"any values":              update(item(8, nil, nil, anyStr("a")), item(8, id(c, 0), nil, anyStr("b"))),
		"right names its parent":  update(item(4, nil, nil, str("ab")), item(4, nil, nil, str("x"))),
	}
	for name, u := range cases {
		if err := yupdate.Validate(u); err != nil {
			t.Fatalf("%s: bad test update: %v", name, err)
		}
		if got := mustCompact(t, u); !bytes.Equal(got, u) {
			t.Errorf("%s: Compact joined what it must not:\n%x\n%x", name, u, got)
		}
	}
	// Deleted content and strings with the same right origin do join.
	joins := map[string][2][]byte{
		"deleted": {
			update(item(1, nil, id(3, 0), deleted(2)), item(1, id(c, 1), id(3, 0), deleted(3))),
			update(item(1, nil, id(3, 0), deleted(5))),
		},
		"same right origin": {
			update(item(4, id(3, 4), id(3, 5), str("ab")), item(4, id(c, 1), id(3, 5), str("x"))),
			update(item(4, id(3, 4), id(3, 5), str("abx"))),
		},
	}
	for name, j := range joins {
		if got := mustCompact(t, j[0]); !bytes.Equal(got, j[1]) {
			t.Errorf("%s: Compact =\n%x, want\n%x", name, got, j[1])
		}
	}
}

// A client listed twice is refused (see TestRefusesWhatYjsCannotHold), not joined, and GC and
// Skip ranges join like in Merge.
func TestCompactKeepsSections(t *testing.T) {
	t.Parallel()
	two := new(builder).uint(2).
		uint(1).uint(4).uint(0).byte(4).uint(1).str("t").str("a").
		uint(1).uint(4).uint(1).byte(4 | 0x80).uint(4).uint(0).str("b").
		uint(0).bytes()
	if got, err := yupdate.Compact(two); !errors.Is(err, yupdate.ErrMalformed) {
		t.Errorf("Compact of client 4 listed twice = %x, %v; want ErrMalformed", got, err)
	}
	gcs := section(3, 4, 0).byte(0).uint(2).byte(0).uint(3).byte(10).uint(1).uint(0).bytes()
	want := section(2, 4, 0).byte(0).uint(5).byte(10).uint(1).uint(0).bytes()
	if got := mustCompact(t, gcs); !bytes.Equal(got, want) {
		t.Errorf("GC ranges: Compact =\n%x, want\n%x", got, want)
	}
	if got := mustCompact(t, []byte{0, 0}); !bytes.Equal(got, []byte{0, 0}) {
		t.Errorf("Compact(empty) = %x", got)
	}
}

func TestCompactRefusesMalformed(t *testing.T) {
	t.Parallel()
	good := mustMerge(t, rootString(3, 0, "ab"), afterString(3, 2, "c"))
	for i := 0; i < len(good); i++ {
		if _, err := yupdate.Compact(good[:i]); !errors.Is(err, yupdate.ErrMalformed) {
			t.Errorf("Compact of %d of %d bytes: %v", i, len(good), err)
		}
	}
	if _, err := yupdate.Compact(append(good[:len(good):len(good)], 0)); !errors.Is(err, yupdate.ErrMalformed) {
		t.Errorf("Compact with a trailing byte: %v", err)
	}
	in := bytes.Clone(good)
	out := mustCompact(t, in)
	if !bytes.Equal(in, good) {
		t.Error("Compact modified its input")
	}
	out[0] ^= 0xff
	if !bytes.Equal(in, good) {
		t.Error("Compact's output aliases its input")
	}
}

// TestCompactSemanticWithYjs checks with the real yjs that compacting changes nothing a document
// can see: for every fixture scenario, Compact of the merge, diffs of the compacted document
// against client states, and a server's cycle of merging new updates into a compacted document
// and compacting again all give the original document and state vector.
func TestCompactSemanticWithYjs(t *testing.T) {
	t.Parallel()
	needNode(t)
	var cases []checkCase
	for _, s := range loadFixtures(t).Scenarios {
		emitted := s.inputs(t, seq(s.Updates))
		all := hexAll(emitted...)
		add := func(name string, base []string, candidate ...[]byte) {
			cases = append(cases, checkCase{Name: s.Name + "/" + name, Roots: s.Roots, Base: base, Candidate: hexAll(candidate...), Expect: all})
		}
		merged := mustMerge(t, emitted...)
		compacted := mustCompact(t, merged)
		add("compact-merge", nil, compacted)
		// The server's cycle: fold the tail into the compacted document, compact, repeat.
		var doc []byte
		for i := 0; i < len(emitted); i += 3 {
			parts := emitted[i:min(i+3, len(emitted))]
			if doc != nil {
				parts = append([][]byte{doc}, parts...)
			}
			doc = mustCompact(t, mustMerge(t, parts...))
		}
		add("compact-cycle", nil, doc)
		// Each input on its own (sync step 2 answers from real documents hold deleted content).
		var each [][]byte
		for _, u := range s.inputs(t, seq(len(s.Inputs))) {
			each = append(each, mustCompact(t, u))
		}
		cases = append(cases, checkCase{Name: s.Name + "/compact-each-input", Roots: s.Roots,
			Candidate: hexAll(each...), Expect: s.Inputs})
		for _, st := range s.States {
			base := hexAll(s.inputs(t, st.Subset)...)
			d, err := yupdate.Diff(compacted, jstest.Unhex(t, st.SV))
			if err != nil {
				t.Fatal(err)
			}
			add("diff-of-compact", base, d)
			sv, err := yupdate.StateVector(mustMerge(t, s.inputs(t, st.Subset)...))
			if err != nil {
				t.Fatal(err)
			}
			if d, err = yupdate.Diff(doc, sv); err != nil {
				t.Fatal(err)
			}
			add("diff-of-cycle-against-merge-sv", base, d)
		}
		svM, _ := yupdate.StateVector(merged)
		if svC, _ := yupdate.StateVector(compacted); !bytes.Equal(svM, svC) {
			t.Errorf("%s: Compact changed the state vector %x -> %x", s.Name, svM, svC)
		}
	}
	typing := typingUpdates(1000)
	cases = append(cases, checkCase{Name: "typing-1000/compact", Roots: map[string]string{"t": "text", "meta": "map"},
		Candidate: hexAll(mustCompact(t, mustMerge(t, typing...))), Expect: hexAll(typing...)})
	runChecker(t, cases)
}

type typingScenario struct {
	Name    string            `json:"name"`
	Roots   map[string]string `json:"roots"`
	Updates []string          `json:"updates"`
	State   string            `json:"state"`
	Exact   bool              `json:"exact"`
}

// TestCompactMatchesLiveDocument compares Compact with what live Y.Docs encode
// (Y.encodeStateAsUpdate) after typing: byte for byte where the document never deleted or split
// an item, by size and with the checker otherwise. The sizes are logged (run with -v).
func TestCompactMatchesLiveDocument(t *testing.T) {
	t.Parallel()
	node := needNode(t)
	cmd := exec.CommandContext(t.Context(), node, "gen/compact-check.mjs")
	cmd.Dir = jsDir
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("compact-check.mjs: %v", err)
	}
	var f struct{ Scenarios []typingScenario }
	if err := json.Unmarshal(out, &f); err != nil {
		t.Fatal(err)
	}
	var cases []checkCase
	for _, s := range f.Scenarios {
		us := make([][]byte, len(s.Updates))
		for i, h := range s.Updates {
			us[i] = jstest.Unhex(t, h)
		}
		merged := mustMerge(t, us...)
		compacted := mustCompact(t, merged)
		state := jstest.Unhex(t, s.State)
		t.Logf("%s: %d updates; Merge %d bytes, Compact %d bytes, yjs encodeStateAsUpdate %d bytes",
			s.Name, len(us), len(merged), len(compacted), len(state))
		if s.Exact && !bytes.Equal(compacted, state) {
			t.Errorf("%s: Compact differs from the live document's encoding:\n got %x\nyjs %x", s.Name, compacted, state)
		}
		// Within a few bytes per item the live document keeps apart.
		if len(compacted) > 2*len(state)+64 {
			t.Errorf("%s: Compact is %d bytes, the live document %d", s.Name, len(compacted), len(state))
		}
		cases = append(cases, checkCase{Name: s.Name, Roots: s.Roots, Candidate: hexAll(compacted), Expect: s.Updates})
	}
	runChecker(t, cases)
}

// A merged document keeps every keystroke as its own item; Compact joins them as a live Yjs
// document does.
func ExampleCompact() {
	// "hello", then " world", as two updates of client 1.
	hello, _ := hex.DecodeString("01010100040101740568656c6c6f00")
	world, _ := hex.DecodeString("010101058401040620776f726c6400")
	merged, _ := yupdate.Merge(hello, world)
	compacted, _ := yupdate.Compact(merged)
	fmt.Printf("merged:    %x\n", merged)
	fmt.Printf("compacted: %x\n", compacted)
	// Output:
	// merged:    01020100040101740568656c6c6f8401040620776f726c6400
	// compacted: 01010100040101740b68656c6c6f20776f726c6400
}
