package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// TestBenchSmoke runs the whole benchmark with small numbers: it builds examples/yjs, starts it
// and the Node reference server as child processes, drives a few editors against each, checks
// that every keystroke reached every other editor, and prints the comparison. It keeps the
// benchmark working; its figures mean nothing.
func TestBenchSmoke(t *testing.T) {
	t.Parallel()
	needNode(t)
	if testing.Short() {
		t.Skip("builds and runs two servers; skipped with -short")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var out bytes.Buffer
	err := run(ctx, options{
		editors: 4, duration: 300 * time.Millisecond, window: 4, rounds: 1, servers: "go,node",
		node: "node", jsDir: jsDir, buildDir: "..",
	}, &out)
	t.Log("\n" + out.String())
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"go (examples/yjs)", "node (@y/websocket-server 0.1.1)", "go/node throughput ratio"} {
		if !strings.Contains(out.String(), want) {
			t.Fatalf("output lacks %q", want)
		}
	}
}
