// Command bench measures one busy Yjs document: 50 editors typing into one room of a y-websocket
// server, each keeping a window of keystrokes in flight, every keystroke relayed to the other 49.
// It runs the Go examples/yjs server and the reference Node server (@y/websocket-server 0.1.1)
// one after the other, several rounds, each round on a fresh server process, and prints relayed
// updates per second, server CPU per relayed update (from /proc/<pid>/stat) and the ratio.
//
//	go run ./examples/yjs/bench                        # 50 editors, 10 s, 3 rounds each
//	go run ./examples/yjs/bench -editors 50 -duration 5s -rounds 2
//
// Every run checks that every keystroke reached every other editor; a run that loses one fails.
// "per frame" is how many keystrokes a frame an editor received carried on average: a server may
// merge queued updates into one (still a valid Yjs update), and that is part of what it is
// measured on. The keystrokes are real Yjs v1 updates, byte for byte what yjs emits (update_test.go checks
// that against yjs itself).
//
// "doc bytes" is the size of the document a newcomer is sent after the run. The example server
// allows documents up to 16 MiB; at the rates seen here a document grows by about 3 MB per 10 s
// of typing, so keep -duration under about 45 s (a longer run fails with close code 4413).
//
// Run it from the repository root (it builds ./examples/yjs and finds the Node server in
// ginws/yjs/testdata/js, where `npm ci` installs it).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"time"
)

func main() {
	var o options
	flag.IntVar(&o.editors, "editors", 50, "clients typing into the one room")
	flag.DurationVar(&o.duration, "duration", 10*time.Second, "how long editors type per run")
	flag.IntVar(&o.window, "window", 16, "keystrokes per editor in flight before it waits")
	flag.IntVar(&o.rounds, "rounds", 3, "runs per server, alternating Go and Node")
	flag.StringVar(&o.servers, "servers", "go,node", "which servers: go, node or go,node")
	flag.StringVar(&o.goBin, "go-bin", "", "examples/yjs binary (default: go build ./examples/yjs)")
	flag.StringVar(&o.goLayer, "go-layer", "memory", "the Go server's -layer (e.g. redis://127.0.0.1:6379/6?prefix=yjsbench)")
	flag.StringVar(&o.node, "node", "node", "node binary")
	flag.StringVar(&o.jsDir, "js-dir", "ginws/yjs/testdata/js", "npm workspace holding @y/websocket-server")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, o, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

type options struct {
	editors  int
	duration time.Duration
	window   int
	rounds   int
	servers  string
	goBin    string
	goLayer  string
	node     string
	jsDir    string
	buildDir string // the examples/yjs package directory to build; default "examples/yjs"
}

type summary struct {
	name    string
	results []LoadResult
}

func run(ctx context.Context, o options, out io.Writer) error {
	wantGo, wantNode := false, false
	switch o.servers {
	case "go,node", "node,go":
		wantGo, wantNode = true, true
	case "go":
		wantGo = true
	case "node":
		wantNode = true
	default:
		return fmt.Errorf("-servers %q: want go, node or go,node", o.servers)
	}
	if wantGo && o.goBin == "" {
		if o.buildDir == "" {
			o.buildDir = "examples/yjs"
		}
		dir, err := os.MkdirTemp("", "yjsbench")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		o.goBin = filepath.Join(dir, "yjs")
		build := exec.CommandContext(ctx, "go", "build", "-o", o.goBin, ".")
		build.Dir = o.buildDir
		build.Stdout, build.Stderr = os.Stderr, os.Stderr
		if err := build.Run(); err != nil {
			return fmt.Errorf("go build ./examples/yjs (run from the repository root, or pass -go-bin): %w", err)
		}
	}
	fmt.Fprintf(out, "one room, %d editors, %v of typing per run, window %d, %d rounds; %d CPUs, %s/%s\n",
		o.editors, o.duration, o.window, o.rounds, runtime.NumCPU(), runtime.GOOS, runtime.GOARCH)
	fmt.Fprintf(out, "%-34s %10s %12s %14s %12s %10s %8s %10s\n", "server", "keystrokes", "deliveries", "deliveries/s", "CPU/deliv.", "per frame", "echoes", "doc bytes")

	goSum, nodeSum := &summary{name: "go (examples/yjs)"}, &summary{name: "node (@y/websocket-server 0.1.1)"}
	for round := range o.rounds {
		room := fmt.Sprintf("bench-%d", round)
		if wantGo {
			if err := once(ctx, o, out, goSum, func() (*serverProc, error) { return startGo(ctx, o.goBin, o.goLayer, room) }); err != nil {
				return err
			}
		}
		if wantNode {
			if err := once(ctx, o, out, nodeSum, func() (*serverProc, error) { return startNode(ctx, o.node, o.jsDir, room) }); err != nil {
				return err
			}
		}
	}
	fmt.Fprintln(out)
	for _, s := range []*summary{goSum, nodeSum} {
		if len(s.results) > 0 {
			rate, cpu := s.median()
			fmt.Fprintf(out, "%-34s median %12.0f deliveries/s, %8v server CPU per delivery\n", s.name, rate, cpu)
		}
	}
	if len(goSum.results) > 0 && len(nodeSum.results) > 0 {
		gr, gc := goSum.median()
		nr, nc := nodeSum.median()
		fmt.Fprintf(out, "go/node throughput ratio: %.2fx", gr/nr)
		if gc > 0 {
			fmt.Fprintf(out, "; node/go CPU per delivery: %.2fx", float64(nc)/float64(gc))
		}
		// Each round ran the two servers back to back, under much the same background load.
		fmt.Fprint(out, "\nper round (go/node throughput):")
		for i := range min(len(goSum.results), len(nodeSum.results)) {
			fmt.Fprintf(out, " %.2fx", goSum.results[i].PerSecond()/nodeSum.results[i].PerSecond())
		}
		fmt.Fprintln(out)
	}
	return nil
}

// once runs the load against a fresh server process and stops it.
func once(ctx context.Context, o options, out io.Writer, s *summary, startServer func() (*serverProc, error)) error {
	p, err := startServer()
	if err != nil {
		return err
	}
	defer p.stop()
	res, err := Load(ctx, LoadConfig{URL: p.url, Editors: o.editors, Duration: o.duration, Window: o.window, CPU: p.cpu})
	if err != nil {
		return fmt.Errorf("%s: %w\nserver output:\n%s", p.name, err, p.stderr.String())
	}
	select {
	case <-p.exited:
		return errors.New(p.name + " exited during the run")
	default:
	}
	s.results = append(s.results, res)
	fmt.Fprintf(out, "%-34s %10d %12d %14.0f %12v %10.2f %8d %10d\n", p.name, res.Keystrokes, res.Deliveries, res.PerSecond(),
		res.CPUPerDelivery(), float64(res.Deliveries+res.Echoes)/float64(max(res.Frames, 1)), res.Echoes, res.Document)
	return nil
}

// median returns the median throughput and the median CPU per delivery.
func (s *summary) median() (float64, time.Duration) {
	rates := make([]float64, len(s.results))
	cpus := make([]float64, len(s.results))
	for i, r := range s.results {
		rates[i], cpus[i] = r.PerSecond(), float64(r.CPUPerDelivery())
	}
	return median(rates), time.Duration(median(cpus))
}

func median(v []float64) float64 {
	slices.Sort(v)
	n := len(v)
	if n%2 == 1 {
		return v[n/2]
	}
	return (v[n/2-1] + v[n/2]) / 2
}
