package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// The "django-redis" server is Django Channels' tutorial chat on channels_redis: two Daphne
// processes sharing Redis DB 7 (prefix "asgi"), started by the repository's daphnechat command
// (ginws/redislayer/djangotest/cmd/daphnechat). Like ginws-redis, the clients of each room are
// split over the two processes, the CPU figure is the sum of both Daphne processes, and Redis's
// CPU time is reported beside it.
//
// Process ownership: the tool starts daphnechat, which starts the Daphne processes in their own
// process groups and stops them (SIGTERM, then SIGKILL) when it gets SIGTERM or SIGINT. Proc.Stop
// sends daphnechat SIGTERM and waits for it; if the tool itself dies, the kernel sends daphnechat
// SIGTERM (parent-death signal, Linux), and each Daphne gets SIGKILL when daphnechat dies.

// djangoPython is Debian's interpreter, which the apt packages install Django Channels into; the
// python3 on PATH may be another one.
const djangoPython = "/usr/bin/python3"

// djangoInstallHint names the Debian packages the django-redis server needs.
const djangoInstallHint = "apt-get install python3-django-channels python3-channels-redis python3-daphne"

// errNoDjango is wrapped by checkDjango's error when Django Channels is not installed.
var errNoDjango = errors.New("django-redis needs Django Channels, channels_redis and Daphne")

// djangoRedis is the Redis the Daphne processes share: DB 7 like ginws-redis, without the
// ginws-only linger option.
var djangoRedis = redisRef{addr: defaultRedis.addr, db: defaultRedis.db}

// checkDjango reports whether python (Debian's python3 for the tool) can import what the Django
// chat needs.
func checkDjango(ctx context.Context, python string) error {
	out, err := exec.CommandContext(ctx, python, "-c", "import django, channels, channels_redis, daphne").CombinedOutput()
	if err == nil {
		return nil
	}
	detail := strings.TrimSpace(string(out))
	if i := strings.LastIndexByte(detail, '\n'); i >= 0 {
		detail = detail[i+1:] // e.g. ModuleNotFoundError: No module named 'daphne'
	}
	if detail == "" {
		detail = err.Error()
	}
	return fmt.Errorf("%w (%s: %s); install them with: %s", errNoDjango, python, detail, djangoInstallHint)
}

// buildDjango checks that Django Channels is installed and compiles daphnechat into dir.
func buildDjango(ctx context.Context, repo, dir string) (Target, error) {
	if err := checkDjango(ctx, djangoPython); err != nil {
		return Target{}, err
	}
	bin := filepath.Join(dir, "daphnechat")
	cmd := exec.CommandContext(ctx, "go", "build", "-C", repo, "-o", bin, "./ginws/redislayer/djangotest/cmd/daphnechat")
	if b, err := cmd.CombinedOutput(); err != nil {
		return Target{}, fmt.Errorf("building daphnechat: %v\n%s", err, b)
	}
	r := djangoRedis
	return Target{Name: "django-redis", bin: bin, procs: 2, redis: &r, launcher: true}, nil
}

// startLauncher runs t.bin (daphnechat), which starts t.procs Daphne processes and prints the
// flags "-addr a,b -pid p1,p2" once they all listen. The returned Proc stops daphnechat, and
// measures the Daphne processes. The caller has already emptied t.redis.
func (t Target) startLauncher(ctx context.Context) (*Proc, error) {
	n := max(t.procs, 1)
	cmd := exec.Command(t.bin, "-n", fmt.Sprint(n), "-redis", fmt.Sprintf("redis://%s/%d", t.redis.addr, t.redis.db),
		"-prefix", "asgi", "-flush=false")
	setDeathSignal(cmd)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &Proc{Target: t, cmd: cmd, done: make(chan struct{})}
	flags := make(chan string, 1)
	copied := make(chan struct{}, 2)
	keep := func(r io.Reader, watch bool) {
		defer func() { copied <- struct{}{} }()
		sc := bufio.NewScanner(r)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			if watch && strings.HasPrefix(line, "-addr ") {
				select {
				case flags <- line:
				default:
				}
			}
			p.mu.Lock()
			p.tail = append(p.tail, line)
			if len(p.tail) > 20 {
				p.tail = p.tail[1:]
			}
			p.mu.Unlock()
		}
		_, _ = io.Copy(io.Discard, r)
	}
	go keep(stdout, true)
	go keep(stderr, false)
	go func() {
		// Wait closes the pipes, so read them to the end first.
		<-copied
		<-copied
		_ = cmd.Wait()
		close(p.done)
	}()

	timer := time.NewTimer(2 * time.Minute) // Django's first start compiles its bytecode
	defer timer.Stop()
	select {
	case line := <-flags:
		if err := p.adopt(line, n); err != nil {
			p.Stop()
			return nil, fmt.Errorf("%s: %w", t.Name, err)
		}
		return p, nil
	case <-p.done:
		return nil, fmt.Errorf("%s exited: %s", t.Name, p.Tail())
	case <-timer.C:
		p.Stop()
		return nil, fmt.Errorf("%s did not start listening: %s", t.Name, p.Tail())
	case <-ctx.Done():
		p.Stop()
		return nil, ctx.Err()
	}
}

// adopt reads the launcher's "-addr a,b -pid p1,p2" line: p measures the first process, and a
// Proc without a command of its own (Stop leaves it to the launcher) measures each other one.
func (p *Proc) adopt(line string, want int) error {
	f := strings.Fields(line)
	if len(f) != 4 || f[0] != "-addr" || f[2] != "-pid" {
		return fmt.Errorf("unexpected launcher output %q", line)
	}
	pids, err := parsePids(f[3])
	if err != nil {
		return err
	}
	addrs := strings.Split(f[1], ",")
	if len(addrs) != want || len(pids) != want {
		return fmt.Errorf("launcher started %d processes (%s), want %d", len(addrs), line, want)
	}
	p.Addr, p.pid = addrs[0], pids[0]
	for i := 1; i < want; i++ {
		p.others = append(p.others, &Proc{Target: p.Target, Addr: addrs[i], pid: pids[i]})
	}
	return nil
}

// djangoRatios compares ginws-redis with django-redis in a fan-out report: both are two processes
// sharing rooms through the same Redis.
func djangoRatios(find func(string) (Result, bool)) []string {
	d, ok := find("django-redis")
	if !ok {
		return nil
	}
	var lines []string
	if g, ok := find("ginws-redis"); ok && d.Deliveries > 0 && g.Deliveries > 0 && d.DeliveriesPerSec() > 0 {
		line := fmt.Sprintf("ginws-redis/django-redis deliveries/s: %.2f; server CPU per delivery: %.3f",
			g.DeliveriesPerSec()/d.DeliveriesPerSec(), float64(g.CPUPerDelivery())/float64(d.CPUPerDelivery()))
		if g.RedisCPU > 0 && d.RedisCPU > 0 {
			line += fmt.Sprintf("; Redis CPU per delivery: %.3f",
				(float64(g.RedisCPU)/float64(g.Deliveries))/(float64(d.RedisCPU)/float64(d.Deliveries)))
		}
		lines = append(lines, line)
	}
	return append(lines, verdict(d.Lost == 0 && d.Err == nil, fmt.Sprintf("django-redis lost no message (%d lost)", d.Lost)))
}
