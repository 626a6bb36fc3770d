// Package jstest gives tests of the Yjs packages the real JavaScript: Node and the pinned npm
// workspace in ginws/yjs/testdata/js (yjs, y-protocols, y-websocket, lib0; `npm ci` there).
//
// Without Node or the workspace a test is skipped with a message saying what to install — except
// under CI=true, where it fails, so CI can never pass by skipping.
package jstest

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
)

// Dir returns the absolute path of the npm workspace.
func Dir() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "testdata", "js")
}

// Node returns the node binary once it has checked that the workspace has package pkg installed.
func Node(t testing.TB, pkg string) string {
	t.Helper()
	node, err := exec.LookPath("node")
	if err == nil {
		_, err = os.Stat(filepath.Join(Dir(), "node_modules", pkg, "package.json"))
	}
	if err != nil {
		msg := "needs Node 20+ and the pinned npm packages: run `npm ci` in ginws/yjs/testdata/js (" + err.Error() + ")"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return node
}

// FixtureCurrent runs the generator script (a path inside the workspace) and fails the test when
// its output differs from the committed fixture file, so fixtures cannot drift from the pinned
// JavaScript packages. pkg is the package the generator needs.
func FixtureCurrent(t *testing.T, pkg, script, committed string) {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), Node(t, pkg), script)
	cmd.Dir = Dir()
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s: %v", script, err)
	}
	want, err := os.ReadFile(committed)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out, want) {
		t.Fatalf("%s is stale: replace it with the output of `node %s` run in ginws/yjs/testdata/js", committed, script)
	}
}

// LoadJSON decodes a committed fixture file into v.
func LoadJSON(t testing.TB, path string, v any) {
	t.Helper()
	if err := ReadJSON(path, v); err != nil {
		t.Fatal(err)
	}
}

// ReadJSON is LoadJSON for callers that load once for many tests (under a sync.Once).
func ReadJSON(path string, v any) error {
	raw, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

// Unhex decodes the hex of a fixture's bytes.
func Unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
