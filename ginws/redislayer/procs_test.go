package redislayer_test

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/rueidis"

	"ginws.dev/ginws/redislayer/redistest"
)

// Private Redis processes for fault tests: the tests kill, pause and fail them over, so they never
// touch the machine's shared Redis.

const (
	redisServer   = "/usr/bin/redis-server"
	redisSentinel = "/usr/bin/redis-sentinel"
)

// needBinary skips the test (fails it under CI=true) when path is not installed.
func needBinary(t *testing.T, path, pkg string) {
	t.Helper()
	if _, err := os.Stat(path); err != nil {
		redistest.SkipOrFail(t, fmt.Sprintf("%s is not installed (apt-get install %s)", path, pkg))
	}
}

// redisProc is a redis-server or redis-sentinel the test started.
type redisProc struct {
	t      *testing.T
	bin    string
	args   func(port int) []string
	port   int
	cmd    *exec.Cmd
	exited chan struct{}
}

// startProc starts bin on a free port (args builds its arguments for that port), retrying with
// another port when the chosen one was taken meanwhile. The process is killed at the end of t.
func startProc(t *testing.T, bin string, args func(port int) []string) *redisProc {
	t.Helper()
	r := &redisProc{t: t, bin: bin, args: args}
	t.Cleanup(r.kill)
	var err error
	for try := 0; try < 5; try++ {
		r.port = freePort(t)
		if err = r.start(); err == nil {
			return r
		}
	}
	t.Fatalf("%s did not start: %v", bin, err)
	return nil
}

// start runs the process on r.port and waits until it accepts connections.
func (r *redisProc) start() error {
	cmd := exec.Command(r.bin, r.args(r.port)...)
	cmd.Stdout, cmd.Stderr = nil, nil
	dieWithTest(cmd)
	if err := cmd.Start(); err != nil {
		return err
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	r.cmd, r.exited = cmd, exited
	deadline := time.Now().Add(10 * time.Second)
	for {
		select {
		case <-exited:
			return fmt.Errorf("%s exited at start (port %d taken?)", r.bin, r.port)
		default:
		}
		c, err := net.DialTimeout("tcp", r.addr(), time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		if time.Now().After(deadline) {
			r.kill()
			return fmt.Errorf("%s on port %d: %v", r.bin, r.port, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// restart starts the process again on the same port (empty, for a redis-server without
// persistence).
func (r *redisProc) restart() {
	r.t.Helper()
	if err := r.start(); err != nil {
		r.t.Fatal(err)
	}
}

// kill ends the process with SIGKILL and waits for it.
func (r *redisProc) kill() {
	if r.cmd != nil && r.cmd.Process != nil {
		_ = r.cmd.Process.Signal(syscall.SIGKILL)
		<-r.exited
	}
}

func (r *redisProc) addr() string           { return fmt.Sprintf("127.0.0.1:%d", r.port) }
func (r *redisProc) url(db int) string      { return fmt.Sprintf("redis://%s/%d", r.addr(), db) }
func (r *redisProc) client() rueidis.Client { return rawClient(r.t, r.url(0)) }

// startRedis starts a redis-server without persistence that accepts DEBUG (for DEBUG SLEEP).
func startRedis(t *testing.T, extra ...string) *redisProc {
	t.Helper()
	needBinary(t, redisServer, "redis-server")
	dir := t.TempDir()
	return startProc(t, redisServer, func(port int) []string {
		return append([]string{"--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "",
			"--appendonly", "no", "--dir", dir, "--enable-debug-command", "yes"}, extra...)
	})
}

// startSentinel starts a redis-sentinel watching the master set "mymaster" at masterPort, with a
// quorum of quorum sentinels; it declares the master down after 1 s.
func startSentinel(t *testing.T, masterPort, quorum int) *redisProc {
	t.Helper()
	needBinary(t, redisSentinel, "redis-sentinel")
	dir := t.TempDir()
	return startProc(t, redisSentinel, func(port int) []string {
		conf := filepath.Join(dir, fmt.Sprintf("sentinel-%d.conf", port))
		text := strings.Join([]string{
			fmt.Sprintf("port %d", port), "bind 127.0.0.1", "dir " + dir,
			fmt.Sprintf("sentinel monitor mymaster 127.0.0.1 %d %d", masterPort, quorum),
			"sentinel down-after-milliseconds mymaster 1000",
			"sentinel failover-timeout mymaster 5000",
			"sentinel parallel-syncs mymaster 1", "",
		}, "\n")
		if err := os.WriteFile(conf, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		return []string{conf}
	})
}

// freePort is a port for a Redis that may be killed and restarted on it (RestartableAddr).
func freePort(t *testing.T) int {
	t.Helper()
	_, port, err := net.SplitHostPort(redistest.RestartableAddr(t))
	if err != nil {
		t.Fatal(err)
	}
	n, _ := strconv.Atoi(port)
	return n
}

// pause makes r's Redis sleep for d (DEBUG SLEEP), from a connection of its own. The channel
// receives the time the sleep ended (its reply arrived).
func (r *redisProc) pause(d time.Duration) <-chan time.Time {
	r.t.Helper()
	c, err := net.Dial("tcp", r.addr())
	if err != nil {
		r.t.Fatal(err)
	}
	secs := strconv.FormatFloat(d.Seconds(), 'f', 3, 64)
	fmt.Fprintf(c, "*3\r\n$5\r\nDEBUG\r\n$5\r\nSLEEP\r\n$%d\r\n%s\r\n", len(secs), secs)
	back := make(chan time.Time, 1)
	go func() {
		_, _ = bufio.NewReader(c).ReadString('\n')
		back <- time.Now()
		c.Close()
	}()
	return back
}

// waitMaster asks a sentinel for the master's port until it is not oldPort.
func waitMaster(t *testing.T, sentinel *redisProc, oldPort int, within time.Duration) int {
	t.Helper()
	c := sentinel.client()
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		addr, err := c.Do(ctx, c.B().Arbitrary("SENTINEL", "get-master-addr-by-name", "mymaster").Build()).AsStrSlice()
		cancel()
		if err == nil && len(addr) == 2 {
			if p, _ := strconv.Atoi(addr[1]); p != oldPort {
				return p
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("no sentinel promoted a new master within %v", within)
	return 0
}

// waitReplicaSynced waits until the replica reports its link to the master up.
func waitReplicaSynced(t *testing.T, replica *redisProc) {
	t.Helper()
	c := replica.client()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		info, err := c.Do(ctx, c.B().Info().Section("replication").Build()).ToString()
		cancel()
		if err == nil && strings.Contains(info, "master_link_status:up") {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatal("the replica did not sync with its master")
}
