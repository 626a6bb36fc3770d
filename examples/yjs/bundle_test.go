package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// TestBundleIsUpToDate: the committed web/dist/app.js is what build.sh makes of web/src today,
// so the embedded page never runs stale code.
func TestBundleIsUpToDate(t *testing.T) {
	t.Parallel()
	esbuild := filepath.Join("..", "..", "ginws", "yjs", "testdata", "js", "node_modules", ".bin", "esbuild")
	if _, err := os.Stat(esbuild); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("esbuild missing: CI must run `npm ci` in ginws/yjs/testdata/js")
		}
		t.Skip("needs Node 20+ and the pinned npm packages: run `npm ci` in ginws/yjs/testdata/js (esbuild is missing)")
	}
	out := filepath.Join(t.TempDir(), "app.js")
	if b, err := exec.Command("sh", "build.sh", out).CombinedOutput(); err != nil {
		t.Fatalf("build.sh: %v\n%s", err, b)
	}
	built, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	committed, err := assets.ReadFile("web/dist/app.js")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(built, committed) {
		t.Fatal("web/dist/app.js is stale: run `go generate ./examples/yjs` and commit it")
	}
}
