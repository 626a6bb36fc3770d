package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Target is a chat server the tool can start: ginws' examples/chat, or one of the peers.
type Target struct {
	Name string
	bin  string
	args []string
	addr string // an external server: not started by the tool ("a,b" for several processes)
	pid  int    // its process, if known
	pids []int  // with several external processes: theirs, in the order of addr

	wire     wire      // the protocol its sockets speak (centrifuge's, or the chat contract)
	procs    int       // how many processes to start (default 1); the clients of each room are split over them
	redis    *redisRef // the Redis the processes share, emptied before each start and measured
	launcher bool      // bin starts the procs processes itself and prints their -addr and -pid (django.go)
}

// buildTargets compiles the servers into dir. repo is the ginws repository root.
func buildTargets(ctx context.Context, repo, dir string, names []string) (map[string]Target, error) {
	here := filepath.Join(repo, "examples", "loadtest")
	out := map[string]Target{}
	// One session key for every chat process of the run (they must read each other's cookies),
	// given with -secret so that the chat example does not keep one in the user's config directory.
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, err
	}
	secret := hex.EncodeToString(key)
	for _, full := range names {
		// "NAME+z": the server with permessage-deflate on (ginws: the chat's -compress; gorilla:
		// EnableCompression), and clients that offer it.
		name, deflate := strings.CutSuffix(full, "+z")
		var cmd *exec.Cmd
		bin := filepath.Join(dir, full)
		var args []string
		w := wireChat
		if base, ok := strings.CutSuffix(name, "-nohistory"); ok && (base == "ginws" || base == "ginws-redis") {
			// The same chat with -history=false: its rooms keep no history, for the cost of
			// history (positions, the kept messages) in one run.
			sub := filepath.Join(dir, "nohistory")
			if err := os.MkdirAll(sub, 0o700); err != nil {
				return nil, err
			}
			t, err := buildTargets(ctx, repo, sub, []string{base})
			if err != nil {
				return nil, err
			}
			t[base].args[2] = secret // one session key for the run
			nt := t[base]
			nt.Name, nt.args = name, append(nt.args, "-history=false")
			out[name] = nt
			continue
		}
		if deflate {
			if name != "ginws" && name != "gorilla" && !strings.HasPrefix(name, "ginws@") {
				return nil, fmt.Errorf("%s: +z (compression) is for ginws, ginws@DIR and gorilla", full)
			}
			w |= wireDeflate
			args = append(args, "-compress")
		}
		switch {
		case strings.HasPrefix(name, "ginws@"):
			// Another checkout of ginws (an older revision, say), for before/after figures in one
			// run: "ginws@/path/to/checkout".
			other := strings.TrimPrefix(name, "ginws@")
			bin = filepath.Join(dir, fmt.Sprintf("ginws-other-%d", len(out)))
			cmd = exec.CommandContext(ctx, "go", "build", "-C", other, "-o", bin, "./examples/chat")
			args = append(args, "-debug", "-secret", secret)
			if b, err := cmd.CombinedOutput(); err != nil {
				return nil, fmt.Errorf("building %s: %v\n%s", name, err, b)
			}
			if knowsFlag(ctx, bin, "presence") {
				// Served as plain "ginws" is: without who-is-here, so the two compare like for like.
				args = append(args, "-presence=false")
			}
			out[full] = Target{Name: full, bin: bin, args: args, procs: 1, wire: w}
			continue
		}
		switch name {
		case "ginws":
			// The plain chat, as the peers serve it: without who-is-here.
			cmd = exec.CommandContext(ctx, "go", "build", "-C", repo, "-o", bin, "./examples/chat")
			args = append(args, "-debug", "-secret", secret, "-presence=false")
		case "ginws-redis", "ginws-presence":
			// ginws-presence: the chat with who-is-here, for -mode presence.
			cmd = exec.CommandContext(ctx, "go", "build", "-C", repo, "-o", bin, "./examples/chat")
			r := defaultRedis
			lay := r.url()
			if name == "ginws-presence" {
				// A socket watching a room with 1000 joins a second gets 2000 events a second, in
				// bursts: a deeper queue than the default 100, or it misses some (the group-send
				// policy: a full member misses the message). 10 000, as deep as a process's Redis
				// key (ProcessCapacity): the layer batches presence events, so a backlog that
				// waited in Redis when each event was a message of its own now waits in the
				// socket's queue, and a watcher starved of CPU for half a second overflowed 1 000.
				sep := "?"
				if strings.Contains(lay, "?") {
					sep = "&"
				}
				lay += sep + "capacity=10000"
			}
			args = []string{"-debug", "-secret", secret, "-layer", lay, "-presence=" + strconv.FormatBool(name == "ginws-presence")}
			if b, err := cmd.CombinedOutput(); err != nil {
				return nil, fmt.Errorf("building %s: %v\n%s", name, err, b)
			}
			out[name] = Target{Name: name, bin: bin, args: args, procs: 2, redis: &r}
			continue
		case "django-redis":
			t, err := buildDjango(ctx, repo, dir)
			if err != nil {
				return nil, err
			}
			out[name] = t
			continue
		case "gorilla":
			cmd = exec.CommandContext(ctx, "go", "build", "-C", here, "-o", bin, "./cmd/gorillahub")
		case "melody":
			cmd = exec.CommandContext(ctx, "go", "build", "-C", here, "-o", bin, "./cmd/melodychat")
		case "centrifuge":
			cmd = exec.CommandContext(ctx, "go", "build", "-C", here, "-o", bin, "./cmd/centrifugechat")
			w = wireCentrifuge
		default:
			return nil, fmt.Errorf("unknown server %q (ginws, ginws-redis, their -nohistory variants, ginws-presence, django-redis, gorilla, melody, centrifuge)", name)
		}
		if b, err := cmd.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("building %s: %v\n%s", name, err, b)
		}
		out[full] = Target{Name: full, bin: bin, args: args, wire: w}
	}
	return out, nil
}

// findRepo walks up from the working directory to the ginws module root.
func findRepo() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && strings.Contains(string(b), "module ginws.dev\n") {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("not inside the ginws repository (use -repo)")
		}
		dir = parent
	}
}

// Proc is a running server process.
type Proc struct {
	Target
	Addr   string
	pid    int
	cmd    *exec.Cmd // nil for an external server
	done   chan struct{}
	others []*Proc // the other processes of a multi-process server; Addr is the first one's

	mu   sync.Mutex
	tail []string // last lines of stderr, for error reports
}

var listenRe = regexp.MustCompile(`url=http://([^/\s]+)/`)

// Start runs the target's processes on free loopback ports and waits until they listen.
func (t Target) Start(ctx context.Context) (*Proc, error) {
	if t.addr != "" {
		return t.external()
	}
	if t.redis != nil {
		if err := t.redis.flush(ctx); err != nil {
			return nil, fmt.Errorf("%s: emptying Redis DB %d: %w", t.Name, t.redis.db, err)
		}
	}
	if t.launcher {
		return t.startLauncher(ctx)
	}
	p, err := t.startOne(ctx)
	if err != nil {
		return nil, err
	}
	for i := 1; i < t.procs; i++ {
		q, err := t.startOne(ctx)
		if err != nil {
			p.Stop()
			return nil, err
		}
		p.others = append(p.others, q)
	}
	return p, nil
}

// startOne runs one process of the target.
func (t Target) startOne(ctx context.Context) (*Proc, error) {
	cmd := exec.Command(t.bin, append([]string{"-addr", "127.0.0.1:0"}, t.args...)...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &Proc{Target: t, cmd: cmd, pid: cmd.Process.Pid, done: make(chan struct{})}
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			if m := listenRe.FindStringSubmatch(line); m != nil {
				select {
				case addr <- m[1]:
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
		_, _ = io.Copy(io.Discard, stderr)
	}()
	go func() { _ = cmd.Wait(); close(p.done) }()
	select {
	case a := <-addr:
		p.Addr = a
		return p, nil
	case <-p.done:
		return nil, fmt.Errorf("%s exited: %s", t.Name, p.Tail())
	case <-time.After(15 * time.Second):
		p.Stop()
		return nil, fmt.Errorf("%s did not start listening", t.Name)
	case <-ctx.Done():
		p.Stop()
		return nil, ctx.Err()
	}
}

// Tail returns the last lines the server wrote to stderr.
func (p *Proc) Tail() string {
	p.mu.Lock()
	out := strings.Join(p.tail, "\n")
	p.mu.Unlock()
	for _, q := range p.others {
		out += "\n--- " + q.Addr + "\n" + q.Tail()
	}
	return out
}

// Stop sends SIGTERM and waits, killing the process after 10 s.
func (p *Proc) Stop() {
	for _, q := range p.others {
		q.Stop()
	}
	if p.cmd == nil {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// RSS returns the server's resident set size in bytes (/proc/PID/status VmRSS), summed over its
// processes.
func (p *Proc) RSS() (int64, error) { return sum(p, (*Proc).rss) }

// CPU returns the user+system CPU time the server has used (/proc/PID/stat), summed over its
// processes.
func (p *Proc) CPU() (time.Duration, error) { return sum(p, (*Proc).cpu) }

// WriteCalls returns how many write system calls the server has made (/proc/PID/io syscw), summed
// over its processes.
func (p *Proc) WriteCalls() (int64, error) { return sum(p, (*Proc).writeCalls) }

func sum[T int64 | time.Duration](p *Proc, f func(*Proc) (T, error)) (T, error) {
	total, err := f(p)
	for _, q := range p.others {
		v, e := f(q)
		total += v
		err = errors.Join(err, e)
	}
	return total, err
}

func (p *Proc) rss() (int64, error) {
	if p.pid == 0 {
		return 0, errors.New("no server process to measure (-pid)")
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			f := strings.Fields(rest)
			if len(f) >= 1 {
				kb, err := strconv.ParseInt(f[0], 10, 64)
				return kb * 1024, err
			}
		}
	}
	return 0, errors.New("no VmRSS in /proc status")
}

// clockTicks is USER_HZ, the unit of /proc/PID/stat times: 100 on Linux.
const clockTicks = 100

func (p *Proc) cpu() (time.Duration, error) {
	if p.pid == 0 {
		return 0, errors.New("no server process to measure (-pid)")
	}
	return cpuOf(p.pid)
}

// cpuOf reads the user+system CPU time of a process from /proc/PID/stat.
func cpuOf(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	s := string(b)
	// Fields after the command name (which is in parentheses and may contain spaces).
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, errors.New("bad /proc stat")
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 13 {
		return 0, errors.New("short /proc stat")
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, err
	}
	return time.Duration(utime+stime) * time.Second / clockTicks, nil
}

func (p *Proc) writeCalls() (int64, error) {
	if p.pid == 0 {
		return 0, errors.New("no server process to measure (-pid)")
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/io", p.pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "syscw:"); ok {
			return strconv.ParseInt(strings.TrimSpace(rest), 10, 64)
		}
	}
	return 0, errors.New("no syscw in /proc io")
}

// DebugStats is what /debug/stats reports.
type DebugStats struct {
	Goroutines int    `json:"goroutines"`
	HeapInuse  uint64 `json:"heap_inuse"`
	HeapAlloc  uint64 `json:"heap_alloc"`
}

// Stats reads /debug/stats.
func (p *Proc) Stats(ctx context.Context) (DebugStats, error) {
	var st DebugStats
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+p.Addr+"/debug/stats", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return st, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return st, fmt.Errorf("/debug/stats: %s", resp.Status)
	}
	return st, json.NewDecoder(resp.Body).Decode(&st)
}

// Settle asks the server to collect garbage and gives it time to return memory.
func (p *Proc) Settle(ctx context.Context, d time.Duration) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+p.Addr+"/debug/gc", nil)
	if resp, err := http.DefaultClient.Do(req); err == nil {
		resp.Body.Close()
	}
	select {
	case <-time.After(d):
	case <-ctx.Done():
	}
}

// knowsFlag reports whether the program bin lists -name in its -help output (older checkouts of
// the chat example lack some flags, and an unknown flag stops it).
func knowsFlag(ctx context.Context, bin, name string) bool {
	out, _ := exec.CommandContext(ctx, bin, "-help").CombinedOutput() // -help exits 2
	return bytes.Contains(out, []byte("\n  -"+name+"\n")) || bytes.Contains(out, []byte("\n  -"+name+" "))
}
