package yproto_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// TestFixturesAreCurrent regenerates testdata/frames.json with the pinned y-protocols and checks
// that the committed file matches. It needs node and the npm workspace in ginws/yjs/testdata/js.
func TestFixturesAreCurrent(t *testing.T) {
	const jsDir = "../testdata/js"
	node, err := exec.LookPath("node")
	if err == nil {
		_, err = os.Stat(filepath.Join(jsDir, "node_modules", "y-protocols", "package.json"))
	}
	if err != nil {
		msg := "needs node and the npm workspace: install Node 20 and run `npm ci` in ginws/yjs/testdata/js (" + err.Error() + ")"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	cmd := exec.CommandContext(t.Context(), node, "gen/yproto-fixtures.mjs")
	cmd.Dir = jsDir
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("generator: %v", err)
	}
	committed, err := os.ReadFile("testdata/frames.json")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out, committed) {
		t.Fatal("testdata/frames.json is stale: regenerate it (see message_test.go)")
	}
}
