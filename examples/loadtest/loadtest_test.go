package main

import (
	"context"
	"errors"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// targetsForTest builds the four single-process servers.
func targetsForTest(t *testing.T) map[string]Target {
	t.Helper()
	repo, err := findRepo()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	targets, err := buildTargets(ctx, repo, dir, []string{"ginws", "gorilla", "melody", "centrifuge"})
	if err != nil {
		t.Fatal(err)
	}
	return targets
}

// TestModesAgainstEveryServer runs each mode at a small size against each server: every message
// must arrive, and the figures must be there.
func TestModesAgainstEveryServer(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("builds and runs four servers")
	}
	targets := targetsForTest(t)
	o := Params{Conns: 60, Rooms: 3, Duration: time.Second, Window: 5, Rate: 20, Cycles: 60, Batch: 20, Size: 16, Par: 16}
	for _, name := range []string{"gorilla", "melody", "centrifuge", "ginws"} {
		for _, mode := range []struct {
			name string
			run  func(context.Context, *Proc, Params) Result
		}{{"idle", Idle}, {"fanout", FanOut}, {"rate", FixedRate}, {"churn", Churn}} {
			t.Run(name+"/"+mode.name, func(t *testing.T) {
				t.Parallel() // each case has a server process of its own, and most of them wait
				ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
				defer cancel()
				p, err := targets[name].Start(ctx)
				if err != nil {
					t.Fatal(err)
				}
				defer p.Stop()
				r := mode.run(ctx, p, o)
				if mode.name == "churn" && name != "ginws" && errors.Is(r.Err, errLost) {
					// The peers register a connection in their hub only after the upgrade, so a
					// message sent right after a handshake can miss it: their defect, which the
					// report flags. ginws joins groups before the 101 and must lose nothing.
					t.Logf("%s lost messages in churn (known: it registers connections after the upgrade)", name)
					return
				}
				if r.Err != nil {
					t.Fatalf("%v\n%s", r.Err, p.Tail())
				}
				if r.Lost != 0 {
					t.Fatalf("%d messages lost", r.Lost)
				}
				switch mode.name {
				case "idle":
					if r.RSSAfter <= 0 {
						t.Fatalf("no RSS figure: %+v", r)
					}
				case "fanout":
					if r.Deliveries == 0 || r.CPU <= 0 || r.Writes <= 0 {
						t.Fatalf("no fan-out figures: %+v", r)
					}
				case "rate":
					if r.Deliveries == 0 || r.P99 <= 0 || r.Max < r.P99 {
						t.Fatalf("no latency figures: %+v", r)
					}
				case "churn":
					if r.Deliveries != int64(o.Cycles) {
						t.Fatalf("churn exchanged %d messages, want %d", r.Deliveries, o.Cycles)
					}
				}
			})
		}
	}
}

// TestSoakChurn: connect/disconnect cycles leave the ginws chat server's goroutines and heap at
// their baseline. CI runs 1 000 cycles; set GINWS_SOAK_CYCLES=10000 (or use the tool's churn
// mode) for the full size.
func TestSoakChurn(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("builds and runs the chat server")
	}
	cycles := 1000
	if v := os.Getenv("GINWS_SOAK_CYCLES"); v != "" {
		if n, err := strconv.Atoi(v); err == nil && n > 0 {
			cycles = n
		}
	}
	targets := targetsForTest(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	p, err := targets["ginws"].Start(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Stop()
	r := Churn(ctx, p, Params{Cycles: cycles, Batch: 100, Rooms: 10, Size: 16, Par: 32})
	t.Logf("%d cycles: goroutines %d → %d, heap %d → %d bytes, RSS %d → %d bytes",
		cycles, r.GoroutinesBefore, r.GoroutinesAfter, r.HeapBefore, r.HeapAfter, r.RSSBefore, r.RSSAfter)
	if r.Err != nil {
		t.Fatalf("%v\n%s", r.Err, p.Tail())
	}
	if r.Lost != 0 {
		t.Fatalf("%d messages lost", r.Lost)
	}
}

// TestCrossProcessFanOut runs the fan-out over two chat processes sharing rooms through Redis
// (DB 7): every message must reach the members on both processes, in order, and the figures must
// include both processes' CPU and Redis's.
func TestCrossProcessFanOut(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("builds and runs two chat servers")
	}
	if c, err := net.DialTimeout("tcp", defaultRedis.addr, time.Second); err != nil {
		msg := "Redis is not reachable at " + defaultRedis.addr + ": start redis-server"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	} else {
		c.Close()
	}
	repo, err := findRepo()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	targets, err := buildTargets(ctx, repo, t.TempDir(), []string{"ginws-redis"})
	if err != nil {
		t.Fatal(err)
	}
	p, err := targets["ginws-redis"].Start(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Stop()
	if got := len(p.Addrs()); got != 2 {
		t.Fatalf("ginws-redis started %d processes, want 2", got)
	}
	r := FanOut(ctx, p, Params{Conns: 60, Rooms: 3, Duration: time.Second, Window: 5, Size: 16, Par: 16})
	if r.Err != nil {
		t.Fatalf("%v\n%s", r.Err, p.Tail())
	}
	if r.Lost != 0 || r.Deliveries == 0 || r.CPU <= 0 || r.Procs != 2 {
		t.Fatalf("figures: %+v", r)
	}
	if r.RedisCPU <= 0 {
		t.Errorf("no Redis CPU figure: %+v", r)
	}
	t.Logf("%d deliveries, %.0f/s, %.2f µs server CPU and %.2f µs Redis CPU per delivery",
		r.Deliveries, r.DeliveriesPerSec(), us(r.CPUPerDelivery()), us(r.RedisCPU/time.Duration(r.Deliveries)))
}

// The external server's processes come from -addr and -pid lists; one address keeps working as
// before.
func TestExternalTargets(t *testing.T) {
	t.Parallel()
	pids, err := parsePids("11, 22")
	if err != nil || len(pids) != 2 || pids[1] != 22 {
		t.Fatalf("parsePids = %v, %v", pids, err)
	}
	p, err := Target{Name: "external", addr: "a:1,b:2", pids: pids}.external()
	if err != nil {
		t.Fatal(err)
	}
	if a := p.Addrs(); len(a) != 2 || a[0] != "a:1" || a[1] != "b:2" || p.pid != 11 || p.others[0].pid != 22 {
		t.Fatalf("external a:1,b:2 = %v", a)
	}
	one, err := Target{Name: "external", addr: "a:1", pids: []int{7}}.external()
	if err != nil || len(one.Addrs()) != 1 || one.pid != 7 {
		t.Fatalf("one external server: %+v, %v", one, err)
	}
	if _, err := (Target{addr: "a:1,b:2", pids: []int{1}}).external(); err == nil {
		t.Error("a -pid list shorter than -addr must be an error")
	}
	if _, err := parsePids("x"); err == nil {
		t.Error("-pid x must be an error")
	}
}

// -mode presence at a small size: the big list is right, the storm's joins and leaves reach the
// watchers on both processes once each, and the fan-out runs with and without the storm. Not
// parallel: it shares Redis DB 7 with TestCrossProcessFanOut, and each start empties it.
func TestPresenceMode(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs two chat servers")
	}
	if c, err := net.DialTimeout("tcp", defaultRedis.addr, time.Second); err != nil {
		msg := "Redis is not reachable at " + defaultRedis.addr + ": start redis-server"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	} else {
		c.Close()
	}
	repo, err := findRepo()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	targets, err := buildTargets(ctx, repo, t.TempDir(), []string{"ginws-presence"})
	if err != nil {
		t.Fatal(err)
	}
	p, err := targets["ginws-presence"].Start(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Stop()
	rs := PresenceLoad(ctx, p, Params{Conns: 40, Rooms: 2, Duration: time.Second, Window: 5, Size: 16, Par: 16}, 100, 300)
	if len(rs) != 2 {
		t.Fatalf("results: %+v", rs)
	}
	for _, r := range rs {
		if r.Err != nil {
			t.Fatalf("%s: %v\n%s", r.Server, r.Err, p.Tail())
		}
		if r.Lost != 0 || r.Deliveries == 0 {
			t.Fatalf("%s: figures %+v", r.Server, r)
		}
	}
}

// The -nohistory variants run the same chat with -history=false and the run's session key.
func TestNoHistoryTarget(t *testing.T) {
	repo, err := findRepo()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	targets, err := buildTargets(ctx, repo, t.TempDir(), []string{"ginws", "ginws-nohistory"})
	if err != nil {
		t.Fatal(err)
	}
	with, without := targets["ginws"], targets["ginws-nohistory"]
	if got := strings.Join(without.args, " "); got != strings.Join(with.args, " ")+" -history=false" {
		t.Fatalf("ginws-nohistory args %q, want those of ginws (%q) and -history=false", got, with.args)
	}
	if without.Name != "ginws-nohistory" || without.procs != with.procs {
		t.Fatalf("ginws-nohistory target %+v", without)
	}
}
