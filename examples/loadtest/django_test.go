package main

import (
	"context"
	"errors"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

// skipOrFail skips t with msg, or fails it when CI=true: CI must never pass by skipping.
func skipOrFail(t *testing.T, msg string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatal(msg + " (CI=true: a missing service is a failure)")
	}
	t.Skip(msg)
}

// TestDjangoFanOut runs the fan-out against django-redis (two Daphne processes of the Channels
// tutorial chat on channels_redis, DB 7): every message must reach the members on both
// processes, in order; the figures must include both processes' CPU and Redis's; and stopping the
// server must leave no Daphne process behind.
func TestDjangoFanOut(t *testing.T) {
	// Not parallel: it empties Redis DB 7, as TestCrossProcessFanOut does; sequential tests end
	// before the parallel ones start.
	if testing.Short() {
		t.Skip("builds daphnechat and runs two Daphne processes")
	}
	if c, err := net.DialTimeout("tcp", djangoRedis.addr, time.Second); err != nil {
		skipOrFail(t, "Redis is not reachable at "+djangoRedis.addr+": start redis-server")
	} else {
		c.Close()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if err := checkDjango(ctx, djangoPython); err != nil {
		skipOrFail(t, err.Error())
	}
	repo, err := findRepo()
	if err != nil {
		t.Fatal(err)
	}
	targets, err := buildTargets(ctx, repo, t.TempDir(), []string{"django-redis"})
	if err != nil {
		t.Fatal(err)
	}
	p, err := targets["django-redis"].Start(ctx)
	if err != nil {
		t.Fatal(err)
	}
	stopped := false
	defer func() {
		if !stopped {
			p.Stop()
		}
	}()
	if got := len(p.Addrs()); got != 2 {
		t.Fatalf("django-redis started %d processes, want 2", got)
	}
	pids := []int{p.pid, p.others[0].pid}
	r := FanOut(ctx, p, Params{Conns: 20, Rooms: 2, Duration: time.Second, Window: 5, Size: 16, Par: 8})
	if r.Err != nil {
		t.Fatalf("%v\n%s", r.Err, p.Tail())
	}
	if r.Lost != 0 || r.Deliveries == 0 || r.CPU <= 0 || r.Procs != 2 {
		t.Fatalf("figures: %+v", r)
	}
	if r.RedisCPU <= 0 {
		t.Errorf("no Redis CPU figure: %+v", r)
	}
	t.Logf("%d deliveries, %.0f/s, %.2f µs Daphne CPU and %.2f µs Redis CPU per delivery",
		r.Deliveries, r.DeliveriesPerSec(), us(r.CPUPerDelivery()), us(r.RedisCPU/time.Duration(r.Deliveries)))

	p.Stop()
	stopped = true
	for _, pid := range pids {
		if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
			t.Errorf("Daphne process %d is still there after Stop (kill -0: %v)", pid, err)
		}
	}
}

// The report compares ginws-redis with django-redis when both ran.
func TestDjangoRatios(t *testing.T) {
	t.Parallel()
	g := Result{Mode: "fanout", Server: "ginws-redis", Deliveries: 8000, Elapsed: time.Second, CPU: 80 * time.Millisecond, RedisCPU: 40 * time.Millisecond}
	d := Result{Mode: "fanout", Server: "django-redis", Deliveries: 2000, Elapsed: time.Second, CPU: 800 * time.Millisecond, RedisCPU: 100 * time.Millisecond}
	var b strings.Builder
	report(&b, []Result{g, d})
	out := b.String()
	for _, want := range []string{
		"ginws-redis/django-redis deliveries/s: 4.00; server CPU per delivery: 0.025; Redis CPU per delivery: 0.100",
		"PASS django-redis lost no message (0 lost)",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
}

// Without Django Channels, the django-redis server fails with the apt packages to install.
func TestDjangoMissing(t *testing.T) {
	t.Parallel()
	err := checkDjango(context.Background(), "/nonexistent/python3")
	if !errors.Is(err, errNoDjango) {
		t.Fatalf("checkDjango without python = %v, want errNoDjango", err)
	}
	for _, pkg := range []string{"python3-django-channels", "python3-channels-redis", "python3-daphne"} {
		if !strings.Contains(err.Error(), pkg) {
			t.Errorf("the error does not name %s: %v", pkg, err)
		}
	}
}
