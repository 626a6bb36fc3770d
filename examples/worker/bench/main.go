// Command bench measures workers on one named channel over Redis: examples/worker (Go, on
// ginws/layer.Worker and the Redis layer) in one process and in several, against Django Channels'
// own `manage.py runworker` (Debian's Channels 4.0.0 and channels_redis 4.0.0, through
// ginws/redislayer/djangotest) serving the same channel with the same contract, in the same run.
//
//	go run ./examples/worker/bench -n 20000 -runs go:1,go:4,django:1,django:4 -rounds 2
//
// Each run gets a key prefix of its own on -redis. The n jobs {"type": "generate", "id": N} are
// first written to another channel; the workers are started and, once every one of them says it
// is serving, the jobs are moved to their channel with one RENAME, so that all workers start on a
// full queue and the sender's work is not measured. Throughput counts from the first job handled to
// the last; the CPU figures are the worker processes' (from /proc) and Redis's (INFO cpu: it is the
// machine's shared Redis, so other traffic counts too) over the same span, per job. Every job's
// "handled generate id=N" line is collected from the workers' stdout: a job never handled fails
// the run; a job handled twice is counted (channels_redis' receivers keep the message they pop in
// a "$inflight" backup that other receivers put back, so Django workers sharing a channel may
// handle a job twice; Go workers do not write backups).
//
// The load generator (this program, which reads every line the workers print) runs on the same
// machine as the workers and Redis.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/redis/rueidis"

	"ginws.dev/ginws/layer"
	"ginws.dev/ginws/redislayer"
	"ginws.dev/ginws/redislayer/djangotest"
)

const (
	channel = "thumbnails-generate"
	staging = "thumbnails-staging"
)

func main() {
	redisURL := flag.String("redis", "redis://127.0.0.1:6379/6", "Redis `URL` the workers share (each run uses a fresh key prefix there)")
	n := flag.Int("n", 20000, "jobs per run")
	runs := flag.String("runs", "go:1,go:4,django:1", "comma-separated `kind:processes` runs; kind is go or django")
	rounds := flag.Int("rounds", 1, "repeat the runs this many times, alternating")
	timeout := flag.Duration("timeout", 50*time.Second, "longest wait for one run's jobs (the jobs expire after 60 s)")
	flag.Parse()

	plan, err := parseRuns(*runs)
	if err != nil {
		fail(err)
	}
	ctx, stop := signalContext()
	defer stop()
	bin, cleanup, err := buildWorker(ctx)
	if err != nil {
		fail(err)
	}
	defer cleanup()
	rc, err := redisClient(*redisURL)
	if err != nil {
		fail(err)
	}
	defer rc.Close()

	fmt.Printf("worker bench: %s, %d CPUs, %d jobs per run, Redis %s; load generator on the same machine\n",
		time.Now().Format(time.RFC3339), runtime.NumCPU(), *n, *redisURL)
	var results []result
	failed := false
	for round := 1; round <= *rounds; round++ {
		for _, r := range plan {
			fmt.Fprintf(os.Stderr, "… %s (round %d)\n", r, round)
			res := runOnce(ctx, r, bin, *redisURL, rc, *n, *timeout)
			if res.err != nil {
				failed = true
				fmt.Fprintf(os.Stderr, "FAIL %s: %v\n", r, res.err)
			}
			results = append(results, res)
			if ctx.Err() != nil {
				fail(ctx.Err())
			}
		}
	}
	report(os.Stdout, results)
	if failed {
		os.Exit(1)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "bench:", err)
	os.Exit(1)
}

type run struct {
	kind  string // "go" or "django"
	procs int
}

func (r run) String() string { return fmt.Sprintf("%s ×%d", r.kind, r.procs) }

func parseRuns(s string) ([]run, error) {
	var out []run
	for _, part := range strings.Split(s, ",") {
		kind, num, ok := strings.Cut(strings.TrimSpace(part), ":")
		p, err := strconv.Atoi(num)
		if !ok || err != nil || p < 1 || (kind != "go" && kind != "django") {
			return nil, fmt.Errorf("-runs: %q is not go:N or django:N", part)
		}
		out = append(out, run{kind, p})
	}
	return out, nil
}

type result struct {
	run       run
	jobs      int
	elapsed   time.Duration // first job handled → last
	workerCPU time.Duration // the worker processes, over the same span (from the RENAME)
	redisCPU  time.Duration
	twice     int   // jobs handled more than once
	perProc   []int // lines per process
	err       error
}

// tally collects the "handled generate id=N" lines of every worker process.
type tally struct {
	mu          sync.Mutex
	n           int
	seen        []int
	perProc     []int
	distinct    int
	first, last time.Time
	done        chan struct{}
}

var handled = regexp.MustCompile(`^handled generate id=(\d+)$`)

func (t *tally) line(proc int, s string) {
	m := handled.FindStringSubmatch(s)
	if m == nil {
		return
	}
	id, err := strconv.Atoi(m[1])
	now := time.Now()
	t.mu.Lock()
	defer t.mu.Unlock()
	if err != nil || id < 0 || id >= t.n {
		return
	}
	if t.first.IsZero() {
		t.first = now
	}
	t.perProc[proc]++
	t.seen[id]++
	if t.seen[id] == 1 {
		t.distinct++
		t.last = now
		if t.distinct == t.n {
			close(t.done)
		}
	}
}

// lineWriter hands each complete line written to it to fn.
type lineWriter struct {
	mu  sync.Mutex
	buf []byte
	fn  func(string)
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, p...)
	for {
		i := strings.IndexByte(string(w.buf), '\n')
		if i < 0 {
			return len(p), nil
		}
		w.fn(strings.TrimRight(string(w.buf[:i]), "\r"))
		w.buf = w.buf[i+1:]
	}
}

// worker is one worker process of a run.
type worker struct {
	pid   int
	ready chan struct{}
	stop  func() error
	tail  *lineWriter
	out   *strings.Builder
}

func runOnce(ctx context.Context, r run, bin, redisURL string, rc rueidis.Client, n int, timeout time.Duration) result {
	res := result{run: r, jobs: n}
	prefix := fmt.Sprintf("asgiworkerbench%08x", rand.Uint32())
	lay, err := redislayer.New(redislayer.Config{Hosts: []string{redisURL}, Prefix: prefix, Capacity: n + 1, Expiry: 60 * time.Second})
	if err != nil {
		res.err = err
		return res
	}
	defer func() {
		fctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = lay.Flush(fctx) // every key of the run's prefix
		_ = lay.Close()
	}()
	if res.err = preload(ctx, lay, n); res.err != nil {
		return res
	}

	t := &tally{n: n, seen: make([]int, n), perProc: make([]int, r.procs), done: make(chan struct{})}
	var workers []*worker
	defer func() {
		for _, w := range workers {
			_ = w.stop()
		}
	}()
	for i := range r.procs {
		var w *worker
		if r.kind == "go" {
			w, err = startGo(bin, redisURL, prefix, i, t)
		} else {
			w, err = startDjango(ctx, redisURL, prefix, n, i, t)
		}
		if err != nil {
			res.err = err
			return res
		}
		workers = append(workers, w)
	}
	for _, w := range workers {
		select {
		case <-w.ready:
		case <-time.After(60 * time.Second):
			res.err = fmt.Errorf("a worker did not start:\n%s", w.out.String())
			return res
		case <-ctx.Done():
			res.err = ctx.Err()
			return res
		}
	}

	cpu0 := workersCPU(workers)
	redis0, rerr := redisCPU(ctx, rc)
	// All jobs at once, for every worker: the staging key becomes the channel's key.
	if err := rc.Do(ctx, rc.B().Rename().Key(prefix+staging).Newkey(prefix+channel).Build()).Error(); err != nil {
		res.err = fmt.Errorf("RENAME: %w", err)
		return res
	}
	select {
	case <-t.done:
	case <-time.After(timeout):
	case <-ctx.Done():
	}
	cpu1 := workersCPU(workers)
	redis1, rerr2 := redisCPU(ctx, rc)
	time.Sleep(300 * time.Millisecond) // late duplicates
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.distinct < n {
		res.err = fmt.Errorf("%d of %d jobs handled within %v", t.distinct, n, timeout)
	}
	res.elapsed = t.last.Sub(t.first)
	res.workerCPU = cpu1 - cpu0
	if rerr == nil && rerr2 == nil {
		res.redisCPU = redis1 - redis0
	}
	for _, c := range t.seen {
		if c > 1 {
			res.twice++
		}
	}
	res.perProc = append([]int(nil), t.perProc...)
	return res
}

// preload writes the jobs to the staging channel, from 32 goroutines.
func preload(ctx context.Context, lay *redislayer.Layer, n int) error {
	ids := make(chan int)
	errc := make(chan error, 32)
	var wg sync.WaitGroup
	for range 32 {
		wg.Go(func() {
			for id := range ids {
				if err := lay.Send(ctx, staging, layer.Message{"type": "generate", "id": id}); err != nil {
					errc <- err
					return
				}
			}
		})
	}
	var err error
feed:
	for id := range n {
		select {
		case ids <- id:
		case err = <-errc:
			break feed
		}
	}
	close(ids)
	wg.Wait()
	if err == nil {
		select {
		case err = <-errc:
		default:
		}
	}
	return err
}

func startGo(bin, redisURL, prefix string, i int, t *tally) (*worker, error) {
	w := &worker{ready: make(chan struct{}), out: new(strings.Builder)}
	var once sync.Once
	cmd := exec.Command(bin, "-layer", redisURL+"?prefix="+prefix, "-channel", channel)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	var errMu sync.Mutex
	cmd.Stderr = &lineWriter{fn: func(s string) {
		errMu.Lock()
		w.out.WriteString(s + "\n")
		errMu.Unlock()
		if strings.Contains(s, "worker serving") {
			once.Do(func() { close(w.ready) })
		}
	}}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	read := make(chan struct{})
	go func() {
		defer close(read)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			t.line(i, sc.Text())
		}
	}()
	w.pid = cmd.Process.Pid
	w.stop = func() error {
		_ = cmd.Process.Signal(os.Interrupt)
		<-read
		return cmd.Wait()
	}
	return w, nil
}

func startDjango(ctx context.Context, redisURL, prefix string, n, i int, t *tally) (*worker, error) {
	w := &worker{ready: make(chan struct{}), out: new(strings.Builder)}
	var mu sync.Mutex
	out := &lineWriter{fn: func(s string) {
		t.line(i, s)
		if !handled.MatchString(s) {
			mu.Lock()
			w.out.WriteString(s + "\n")
			mu.Unlock()
		}
	}}
	dw, err := djangotest.RunWorker(ctx, djangotest.Options{RedisHosts: []string{redisURL}, Prefix: prefix, Capacity: n + 1, Output: out}, channel)
	if err != nil {
		if errors.Is(err, djangotest.ErrMissing) {
			return nil, fmt.Errorf("%w (or leave django out of -runs)", err)
		}
		return nil, err
	}
	close(w.ready) // RunWorker returns once runworker says it is running
	w.pid = dw.PID
	w.stop = dw.Close
	return w, nil
}

// workersCPU sums the user and system CPU time of the worker processes, from /proc.
func workersCPU(ws []*worker) time.Duration {
	var total time.Duration
	for _, w := range ws {
		total += procCPU(w.pid)
	}
	return total
}

func procCPU(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')') // the command name may hold spaces
	if i < 0 {
		return 0
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 13 {
		return 0
	}
	utime, _ := strconv.ParseInt(f[11], 10, 64) // fields 14 and 15 of stat(5)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(utime+stime) * time.Second / clockTicks
}

// clockTicks is USER_HZ, 100 on Linux.
const clockTicks = 100

func redisClient(url string) (rueidis.Client, error) {
	opt, err := rueidis.ParseURL(url)
	if err != nil {
		return nil, err
	}
	opt.DisableCache = true
	return rueidis.NewClient(opt)
}

// redisCPU returns Redis's used_cpu_sys + used_cpu_user.
func redisCPU(ctx context.Context, c rueidis.Client) (time.Duration, error) {
	s, err := c.Do(ctx, c.B().Info().Section("cpu").Build()).ToString()
	if err != nil {
		return 0, err
	}
	var total float64
	for _, line := range strings.Split(s, "\n") {
		k, v, _ := strings.Cut(strings.TrimSpace(line), ":")
		if k == "used_cpu_sys" || k == "used_cpu_user" {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				return 0, err
			}
			total += f
		}
	}
	return time.Duration(total * float64(time.Second)), nil
}

func buildWorker(ctx context.Context) (string, func(), error) {
	dir, err := os.MkdirTemp("", "ginws-workerbench")
	if err != nil {
		return "", nil, err
	}
	bin := filepath.Join(dir, "worker")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "ginws.dev/examples/worker")
	if out, err := cmd.CombinedOutput(); err != nil {
		os.RemoveAll(dir)
		return "", nil, fmt.Errorf("go build ginws.dev/examples/worker: %v\n%s", err, out)
	}
	return bin, func() { os.RemoveAll(dir) }, nil
}

func signalContext() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
}

func report(w io.Writer, results []result) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "workers\tjobs\tjobs/s\tworker CPU/job\tRedis CPU/job\thandled twice\tper process\t")
	for _, r := range results {
		if r.err != nil {
			fmt.Fprintf(tw, "%s\t%d\tFAILED: %v\t\t\t\t\t\n", r.run, r.jobs, r.err)
			continue
		}
		rate := float64(r.jobs-1) / r.elapsed.Seconds()
		per := func(d time.Duration) string {
			if d <= 0 {
				return "—"
			}
			return fmt.Sprintf("%.1f µs", float64(d.Microseconds())/float64(r.jobs))
		}
		procs := make([]string, len(r.perProc))
		for i, c := range r.perProc {
			procs[i] = strconv.Itoa(c)
		}
		fmt.Fprintf(tw, "%s\t%d\t%.0f\t%s\t%s\t%d\t%s\t\n", r.run, r.jobs, rate, per(r.workerCPU), per(r.redisCPU), r.twice, strings.Join(procs, "/"))
	}
	tw.Flush()
}
