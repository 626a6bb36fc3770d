package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// serverProc is a y-websocket server running as a child process, measured from outside.
type serverProc struct {
	name   string
	cmd    *exec.Cmd
	url    string // WebSocket URL of the benchmark's room
	stderr syncBuffer
	exited chan struct{}
}

// startGo starts the examples/yjs binary on a free port.
func startGo(ctx context.Context, bin, lay, room string) (*serverProc, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	if lay == "" {
		lay = "memory"
	}
	cmd := exec.Command(bin, "-addr", addr, "-layer", lay)
	return start(ctx, "go (examples/yjs)", cmd, addr, "ws://"+addr+"/yjs/"+room)
}

// startNode starts @y/websocket-server's src/server.js on a free port.
func startNode(ctx context.Context, nodeBin, jsDir, room string) (*serverProc, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	jsDir, err = filepath.Abs(jsDir)
	if err != nil {
		return nil, err
	}
	script := filepath.Join(jsDir, "node_modules", "@y", "websocket-server", "src", "server.js")
	if _, err := os.Stat(script); err != nil {
		return nil, fmt.Errorf("%w (run `npm ci` in %s)", err, jsDir)
	}
	cmd := exec.Command(nodeBin, script)
	cmd.Dir = jsDir
	cmd.Env = append(os.Environ(), "HOST=127.0.0.1", "PORT="+strconv.Itoa(port))
	addr := "127.0.0.1:" + strconv.Itoa(port)
	return start(ctx, "node (@y/websocket-server 0.1.1)", cmd, addr, "ws://"+addr+"/"+room)
}

func start(ctx context.Context, name string, cmd *exec.Cmd, addr, url string) (*serverProc, error) {
	p := &serverProc{name: name, cmd: cmd, url: url, exited: make(chan struct{})}
	cmd.Stdout = &p.stderr
	cmd.Stderr = &p.stderr
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	go func() {
		_ = cmd.Wait()
		close(p.exited)
	}()
	deadline := time.Now().Add(15 * time.Second)
	client := &http.Client{Timeout: time.Second}
	for {
		resp, err := client.Get("http://" + addr + "/")
		if err == nil {
			resp.Body.Close()
			return p, nil
		}
		select {
		case <-p.exited:
			return nil, fmt.Errorf("%s exited at start: %s", name, strings.TrimSpace(p.stderr.String()))
		case <-ctx.Done():
			p.stop()
			return nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			p.stop()
			return nil, fmt.Errorf("%s did not answer on %s within 15 s: %s", name, addr, p.stderr.String())
		}
	}
}

// cpu returns the process's user+system CPU time so far, from /proc/<pid>/stat.
func (p *serverProc) cpu() (time.Duration, error) {
	return procCPU(p.cmd.Process.Pid)
}

// stop ends the process: SIGTERM, then SIGKILL after 5 s.
func (p *serverProc) stop() {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(5 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.exited
	}
}

// clockTick is the unit of /proc/<pid>/stat times: USER_HZ, 100 on every Linux architecture Go
// supports.
const clockTick = 10 * time.Millisecond

func procCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, fmt.Errorf("server CPU: %w", err)
	}
	// Fields after the command name (which may hold spaces) start after the last ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, errors.New("server CPU: unexpected /proc stat format")
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state); utime and stime are fields 14 and 15.
	if len(f) < 13 {
		return 0, errors.New("server CPU: short /proc stat line")
	}
	ut, err1 := strconv.ParseUint(f[11], 10, 64)
	st, err2 := strconv.ParseUint(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, errors.New("server CPU: bad utime/stime in /proc stat")
	}
	return time.Duration(ut+st) * clockTick, nil
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// syncBuffer collects a child's output; exec copies into it from its own goroutine.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.b.Len() > 64<<10 { // keep the start: that is where a server explains why it failed
		return len(p), nil
	}
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
