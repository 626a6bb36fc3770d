package main

import (
	"bytes"
	"regexp"
	"slices"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// Patterns in a nested module are tested from its directory, after this module's; flags go to
// every go test.
func TestPlan(t *testing.T) {
	t.Parallel()
	nested := func(dir string) bool { return dir == "examples/loadtest" }
	cases := []struct {
		args []string
		want []run
	}{
		{nil, []run{{"", []string{"test", "-json"}}}},
		{[]string{"-race", "./...", "./examples/loadtest/..."}, []run{
			{"", []string{"test", "-json", "-race", "./..."}},
			{"examples/loadtest", []string{"test", "-json", "-race", "./..."}},
		}},
		{[]string{"./examples/loadtest/...", "-count=1", "./ginws/..."}, []run{
			{"", []string{"test", "-json", "-count=1", "./ginws/..."}},
			{"examples/loadtest", []string{"test", "-json", "-count=1", "./..."}},
		}},
		{[]string{"-run", "TestX", "./examples/loadtest", "./examples/loadtest/cmd/...", "-args", "-x", "./y"}, []run{
			{"examples/loadtest", []string{"test", "-json", "-run", "TestX", ".", "./cmd/...", "-args", "-x", "./y"}},
		}},
		{[]string{"../elsewhere/...", "ginws.dev/ginws"}, []run{
			{"", []string{"test", "-json", "ginws.dev/ginws", "../elsewhere/..."}},
		}},
	}
	for _, tc := range cases {
		got := plan(tc.args, nested)
		if !slices.EqualFunc(got, tc.want, func(a, b run) bool { return a.dir == b.dir && slices.Equal(a.args, b.args) }) {
			t.Errorf("plan(%q) = %q, want %q", tc.args, got, tc.want)
		}
	}
}

// On a module whose tests pass, fail and skip, the output is go test's, then the skips by reason,
// and the exit status is go test's.
func TestSampleModule(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	sum := newSummary(&out, false)
	code, err := goTest(run{dir: "testdata/sample", args: []string{"test", "-json", "-count=1", "./..."}}, sum)
	if err != nil || code != 1 {
		t.Fatalf("exit status %d, %v; want 1", code, err)
	}
	out.WriteString(sum.skipLine() + "\n")
	got := regexp.MustCompile(`\d+\.\d+s`).ReplaceAllString(out.String(), "T")
	var lines []string
	for _, l := range regexp.MustCompile(`\n`).Split(got, -1) {
		if l != "" {
			lines = append(lines, l)
		}
	}
	slices.Sort(lines) // the packages finish in any order
	want := []string{
		"        sample_test.go:9: want 1, got 2",
		"    --- FAIL: TestFail/broken (T)",
		"--- FAIL: TestFail (T)",
		"?   \tsample/empty\t[no test files]",
		"FAIL",
		"FAIL\tsample\tT",
		"ok  \tsample/good\tT",
		"skipped: 3 tests (Redis is not reachable: start redis-server: 2; needs Node: 1)",
	}
	slices.Sort(want)
	if !slices.Equal(lines, want) {
		t.Errorf("output:\n%s\nwant these lines:\n%q", out.String(), want)
	}
	// A failed package's lines come in go test's order.
	if !regexp.MustCompile(`(?s)--- FAIL: TestFail .*--- FAIL: TestFail/broken .*want 1, got 2.*\nFAIL\n`).MatchString(got) {
		t.Errorf("the failure is not reported as go test reports it:\n%s", out.String())
	}
}

func TestSkipLine(t *testing.T) {
	t.Parallel()
	s := newSummary(nil, false)
	if got := s.skipLine(); got != "skipped: none" {
		t.Errorf("no skips: %q", got)
	}
	p := &pkgState{outputs: []event{
		{Test: "TestA", Output: "=== RUN   TestA\n"},
		{Test: "TestA", Output: "    jstest.go:37: needs Node 20+: run `npm ci` in ginws/yjs/testdata/js (stat /x/node_modules/yjs: no such file)\n"},
		{Test: "TestA", Output: "--- SKIP: TestA (0.00s)\n"},
	}}
	s.countSkip(p, "TestA")
	if got, want := s.skipLine(), "skipped: 1 test (needs Node 20+: run `npm ci` in ginws/yjs/testdata/js: 1)"; got != want {
		t.Errorf("skip line %q, want %q", got, want)
	}
}
