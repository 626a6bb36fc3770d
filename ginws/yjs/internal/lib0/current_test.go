package lib0

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// TestFixturesAreCurrent regenerates testdata/lib0.json with the pinned lib0 and checks
// that the committed file matches. It needs node and the npm workspace in ginws/yjs/testdata/js.
func TestFixturesAreCurrent(t *testing.T) {
	const jsDir = "../../testdata/js"
	node, err := exec.LookPath("node")
	if err == nil {
		_, err = os.Stat(filepath.Join(jsDir, "node_modules", "lib0", "package.json"))
	}
	if err != nil {
		msg := "needs node and the npm workspace: install Node 20 and run `npm ci` in ginws/yjs/testdata/js (" + err.Error() + ")"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	cmd := exec.CommandContext(t.Context(), node, "gen/lib0-fixtures.mjs")
	cmd.Dir = jsDir
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("generator: %v", err)
	}
	committed, err := os.ReadFile("testdata/lib0.json")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out, committed) {
		t.Fatal("testdata/lib0.json is stale: regenerate it (see lib0_test.go)")
	}
}
