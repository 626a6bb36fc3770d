package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"ginws.dev/ginws/redislayer/redistest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestParseRuns(t *testing.T) {
	got, err := parseRuns("go:1, django:4")
	if err != nil || len(got) != 2 || got[0] != (run{"go", 1}) || got[1] != (run{"django", 4}) {
		t.Fatalf("parseRuns = %v, %v", got, err)
	}
	for _, bad := range []string{"go", "go:0", "rust:1", "go:x"} {
		if _, err := parseRuns(bad); err == nil {
			t.Errorf("parseRuns(%q) succeeded", bad)
		}
	}
}

// A short run of two Go worker processes: every job handled once, the figures filled in.
func TestBenchGoWorkers(t *testing.T) {
	redistest.Need(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	bin, cleanup, err := buildWorker(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer cleanup()
	const url = "redis://127.0.0.1:6379/6"
	rc, err := redisClient(url)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	res := runOnce(ctx, run{"go", 2}, bin, url, rc, 300, 30*time.Second)
	if res.err != nil {
		t.Fatal(res.err)
	}
	if res.twice != 0 || res.perProc[0]+res.perProc[1] != 300 || res.elapsed <= 0 || res.workerCPU < 0 {
		t.Fatalf("result %+v", res)
	}
	var out strings.Builder
	report(&out, []result{res})
	if !strings.Contains(out.String(), "go ×2") {
		t.Fatalf("report:\n%s", out.String())
	}
}
