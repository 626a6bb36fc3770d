// Command gotest runs go test and says at the end which tests skipped and why.
//
//	go run ./.ci/gotest -race ./... ./examples/loadtest/... ./.ci/gotest
//
// It runs go test -json with the given flags and packages, prints what go test prints — a line per
// package, and the output of the tests that failed — and ends with one line that counts the
// skipped tests by their skip message:
//
//	skipped: none
//	skipped: 22 tests (needs Node 20+ and the pinned npm packages: run `npm ci` in ginws/yjs/testdata/js: 22)
//
// A trailing parenthesis of a skip message (an error's details) is left out, so that one reason
// counts once. With -v every line of output is printed as it comes.
//
// Patterns that start with ./ or ../ and lie in a nested module (a directory below this one with a
// go.mod of its own, such as examples/loadtest) are tested from that module's directory by a go
// test of their own, which runs at the same time as this module's; every other argument goes to
// each go test as it is (so a flag's value that starts with "." needs the -flag=value form). The
// exit status is that of the first go test (this module's first) that did not exit with 0, or 0.
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
)

func main() {
	args := os.Args[1:]
	runs := plan(args, hasGoMod)
	verbose := slices.ContainsFunc(flagsOf(args), func(a string) bool { return a == "-v" || a == "-v=true" })
	sum := newSummary(os.Stdout, verbose)
	codes := make([]int, len(runs))
	var wg sync.WaitGroup
	for i, r := range runs {
		wg.Go(func() {
			code, err := goTest(r, sum)
			if err != nil {
				fmt.Fprintf(os.Stderr, "gotest: %v\n", err)
				code = max(code, 1)
			}
			codes[i] = code
		})
	}
	wg.Wait()
	fmt.Fprintln(os.Stdout, sum.skipLine())
	for _, code := range codes {
		if code != 0 {
			os.Exit(code)
		}
	}
}

// run is one go test: its directory ("" for this one) and its arguments.
type run struct {
	dir  string
	args []string
}

// isPattern reports whether a is a relative package pattern, the only kind plan moves between
// modules.
func isPattern(a string) bool {
	return a == "." || a == ".." || strings.HasPrefix(a, "./") || strings.HasPrefix(a, "../")
}

// flagsOf returns the arguments that are not relative package patterns, up to -args.
func flagsOf(args []string) []string {
	var flags []string
	for _, a := range args {
		if a == "-args" {
			break
		}
		if !isPattern(a) {
			flags = append(flags, a)
		}
	}
	return flags
}

// plan splits the relative package patterns of args by the module they lie in: one run for this
// directory's module (first), and one for each nested module, in the order the patterns name them.
// Every other argument goes to every run, in its place.
func plan(args []string, hasGoMod func(dir string) bool) []run {
	var order []string                // module directories, "" first
	patterns := map[string][]string{} // module directory → its patterns, rewritten relative to it
	var flags, rest []string
	for i, a := range args {
		if a == "-args" {
			rest = args[i:]
			break
		}
		if !isPattern(a) {
			flags = append(flags, a)
			continue
		}
		mod, p := moduleOf(a, hasGoMod)
		if _, ok := patterns[mod]; !ok {
			order = append(order, mod)
		}
		patterns[mod] = append(patterns[mod], p)
	}
	if len(order) == 0 {
		order = []string{""} // go test's default: the package in this directory
	}
	nested := func(dir string) int {
		if dir == "" {
			return 0
		}
		return 1
	}
	slices.SortStableFunc(order, func(a, b string) int { return nested(a) - nested(b) }) // this module first
	runs := make([]run, 0, len(order))
	for _, mod := range order {
		a := append([]string{"test", "-json"}, flags...)
		a = append(a, patterns[mod]...)
		runs = append(runs, run{dir: mod, args: append(a, rest...)})
	}
	return runs
}

// moduleOf returns the directory of the nested module pattern lies in ("" for this module) and the
// pattern relative to that directory.
func moduleOf(pattern string, hasGoMod func(dir string) bool) (dir, rel string) {
	// The directory the pattern names: up to its first element with "...".
	var elems []string
	for _, e := range strings.Split(filepath.ToSlash(pattern), "/") {
		if strings.Contains(e, "...") {
			break
		}
		elems = append(elems, e)
	}
	base := filepath.Clean(filepath.Join(elems...))
	if base == "." || strings.HasPrefix(base, "..") {
		return "", pattern
	}
	for d := base; d != "." && d != string(filepath.Separator); d = filepath.Dir(d) {
		if hasGoMod(d) {
			r, err := filepath.Rel(d, filepath.FromSlash(pattern))
			if err != nil {
				return "", pattern
			}
			if r == "." {
				return d, "."
			}
			return d, "./" + filepath.ToSlash(r)
		}
	}
	return "", pattern
}

func hasGoMod(dir string) bool {
	_, err := os.Stat(filepath.Join(dir, "go.mod"))
	return err == nil
}

// goTest runs one go test -json, feeding its events to sum, and returns its exit status.
func goTest(r run, sum *summary) (int, error) {
	cmd := exec.Command("go", r.args...)
	cmd.Dir = r.dir
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return 1, err
	}
	if err := cmd.Start(); err != nil {
		return 1, err
	}
	readErr := sum.read(out)
	err = cmd.Wait()
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		return exit.ExitCode(), readErr
	}
	if err != nil {
		return 1, err
	}
	return 0, readErr
}

// event is a go test -json event (cmd/test2json), or a build event (go help buildjson).
type event struct {
	Action  string
	Package string
	Test    string
	Output  string
}

// summary turns go test -json events back into go test's output, and counts the skips. Several
// go tests may feed it at once.
type summary struct {
	mu      sync.Mutex
	w       io.Writer
	verbose bool
	pkgs    map[string]*pkgState
	skips   map[string]int // skip reason → tests
	reasons []string       // in the order first seen
}

type pkgState struct {
	outputs []event         // output events, in order
	failed  map[string]bool // tests that failed
	ended   map[string]bool // tests that passed or skipped
}

func newSummary(w io.Writer, verbose bool) *summary {
	return &summary{w: w, verbose: verbose, pkgs: map[string]*pkgState{}, skips: map[string]int{}}
}

// read consumes a go test -json stream. Lines that are not JSON events are printed as they are.
func (s *summary) read(r io.Reader) error {
	br := bufio.NewReader(r)
	for {
		line, err := br.ReadBytes('\n')
		if len(line) > 0 {
			var ev event
			if line[0] != '{' || json.Unmarshal(line, &ev) != nil {
				s.mu.Lock()
				s.w.Write(line)
				s.mu.Unlock()
			} else {
				s.handle(ev)
			}
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

func (s *summary) handle(ev event) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch ev.Action {
	case "build-output":
		io.WriteString(s.w, ev.Output)
		return
	case "build-fail":
		return
	}
	p := s.pkgs[ev.Package]
	if p == nil {
		p = &pkgState{failed: map[string]bool{}, ended: map[string]bool{}}
		s.pkgs[ev.Package] = p
	}
	switch ev.Action {
	case "output":
		if s.verbose {
			io.WriteString(s.w, ev.Output)
		}
		p.outputs = append(p.outputs, ev)
	case "fail":
		if ev.Test != "" {
			p.failed[ev.Test] = true
			return
		}
		s.finish(ev.Package, p, true)
	case "skip":
		if ev.Test != "" {
			p.ended[ev.Test] = true
			s.countSkip(p, ev.Test)
			return
		}
		s.finish(ev.Package, p, false)
	case "pass":
		if ev.Test != "" {
			p.ended[ev.Test] = true
			return
		}
		s.finish(ev.Package, p, false)
	}
}

// finish prints a package's result as go test does without -v: its summary line when it passed;
// when it failed, for each test that failed (or never ended) its --- FAIL line and its output, and
// then the package's own output.
func (s *summary) finish(pkg string, p *pkgState, failed bool) {
	delete(s.pkgs, pkg)
	if s.verbose {
		return
	}
	var b bytes.Buffer
	if !failed {
		for _, ev := range p.outputs {
			if ev.Test == "" && (strings.HasPrefix(ev.Output, "ok ") || strings.HasPrefix(ev.Output, "?   ")) {
				b.WriteString(ev.Output)
			}
		}
		s.w.Write(b.Bytes())
		return
	}
	// -json reports each test as it ends, subtests before their parent, none indented. go test
	// reports a parent first and indents its subtests by 4 spaces a level.
	type block struct{ head, body strings.Builder }
	blocks := map[string]*block{}
	var tests []string      // in the order they started
	var own strings.Builder // the package's output
	for _, ev := range p.outputs {
		if ev.Test == "" {
			own.WriteString(ev.Output)
			continue
		}
		bl := blocks[ev.Test]
		if bl == nil {
			bl = &block{}
			blocks[ev.Test] = bl
			tests = append(tests, ev.Test)
		}
		if isFraming(ev.Output) {
			continue
		}
		indent := strings.Repeat("    ", strings.Count(ev.Test, "/"))
		if strings.HasPrefix(ev.Output, "--- FAIL: ") {
			bl.head.WriteString(indent + ev.Output)
		} else {
			bl.body.WriteString(indent + ev.Output)
		}
	}
	for _, t := range tests {
		if !p.failed[t] && p.ended[t] {
			continue
		}
		b.WriteString(blocks[t].head.String())
		b.WriteString(blocks[t].body.String())
	}
	b.WriteString(own.String())
	s.w.Write(b.Bytes())
}

// isFraming reports whether line is one of the lines -v adds around tests.
func isFraming(line string) bool {
	for _, p := range []string{"=== RUN", "=== PAUSE", "=== CONT", "=== NAME"} {
		if strings.HasPrefix(line, p) {
			return true
		}
	}
	return false
}

var (
	logPrefix    = regexp.MustCompile(`^\s*[^\s:]+\.go:\d+: `)
	trailingNote = regexp.MustCompile(`\s*\([^()]*\)$`)
)

// countSkip counts a skipped test under its reason: its skip message without the file:line
// prefix, and without a trailing parenthesis of details.
func (s *summary) countSkip(p *pkgState, test string) {
	var lines []string
	for _, ev := range p.outputs {
		if ev.Test != test || isFraming(ev.Output) || strings.Contains(ev.Output, "--- SKIP: ") {
			continue
		}
		for _, l := range strings.Split(ev.Output, "\n") {
			if l = strings.TrimSpace(logPrefix.ReplaceAllString(l, "")); l != "" {
				lines = append(lines, l)
			}
		}
	}
	reason := strings.Join(lines, " ")
	if r := trailingNote.ReplaceAllString(reason, ""); r != "" {
		reason = r
	}
	if reason == "" {
		reason = "no reason given"
	}
	if s.skips[reason] == 0 {
		s.reasons = append(s.reasons, reason)
	}
	s.skips[reason]++
}

// skipLine is the last line: how many tests skipped, by reason.
func (s *summary) skipLine() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	total := 0
	var parts []string
	for _, r := range s.reasons {
		total += s.skips[r]
		parts = append(parts, fmt.Sprintf("%s: %d", r, s.skips[r]))
	}
	switch total {
	case 0:
		return "skipped: none"
	case 1:
		return "skipped: 1 test (" + strings.Join(parts, "; ") + ")"
	}
	return fmt.Sprintf("skipped: %d tests (%s)", total, strings.Join(parts, "; "))
}
