package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"go.uber.org/goleak"

	"ginws.dev/ginws/layer"
	"ginws.dev/ginws/layertest"
	"ginws.dev/ginws/redislayer"
	"ginws.dev/ginws/redislayer/redistest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// The handlers on the in-memory layer: one line per message, the notification to the group the
// message names, and a bad message refused without stopping the worker.
func TestWorkerHandlers(t *testing.T) {
	lay := layer.NewMemory(layer.MemoryConfig{})
	var out lockedBuffer
	w := NewWorker(lay, Options{Channel: "thumbnails-generate", Out: &out, Logger: quiet})
	layertest.StartWorker(t, w)
	ctx := t.Context()
	if err := lay.GroupAdd(ctx, "user.ada", "probe"); err != nil { // stands in for ada's sockets
		t.Fatal(err)
	}
	for _, msg := range []layer.Message{
		{"type": "generate", "id": 42, "notify": "user.ada"},
		{"type": "generate", "id": "forty-three"},
		{"type": "generate", "id": 44},
	} {
		if err := lay.Send(ctx, "thumbnails-generate", msg); err != nil {
			t.Fatal(err)
		}
	}
	st := layertest.WaitHandled(t, w, 3)
	if st.Handled != 2 || st.Failed != 1 {
		t.Errorf("Stats = %+v, want 2 handled and the bad id failed", st)
	}
	if got := out.String(); got != "handled generate id=42\nhandled generate id=44\n" {
		t.Errorf("stdout = %q", got)
	}
	done, err := lay.Receive(ctx, "probe")
	if err != nil || done.Type() != "thumbnail.done" || done["id"] != int64(42) {
		t.Fatalf("notification = %v, %v; want thumbnail.done for 42", done, err)
	}
}

// End to end over Redis: the broadcast example's HTTP view hands ten jobs to two worker
// processes on one channel; each job is handled once, by one of them, and ada's socket on the
// broadcast process hears of every one.
func TestThumbnailsEndToEnd(t *testing.T) {
	redistest.Need(t)
	dir := t.TempDir()
	workerBin, broadcastBin := filepath.Join(dir, "worker"), filepath.Join(dir, "broadcast")
	for bin, pkg := range map[string]string{workerBin: ".", broadcastBin: "../broadcast"} {
		if out, err := exec.Command("go", "build", "-o", bin, pkg).CombinedOutput(); err != nil {
			t.Fatalf("go build %s: %v\n%s", pkg, err, out)
		}
	}
	prefix := fmt.Sprintf("asgiworkertest%08x:", rand.Uint32())
	layerURL := "redis://127.0.0.1:6379/3?prefix=" + prefix
	t.Cleanup(func() { flushPrefix(t, prefix) })

	bc := start(t, "broadcast", broadcastBin, "-addr", "127.0.0.1:0", "-layer", layerURL)
	addr := listeningOn(t, bc)
	workers := []*proc{
		start(t, "worker 1", workerBin, "-layer", layerURL, "-channel", "thumbnails-generate"),
		start(t, "worker 2", workerBin, "-layer", layerURL, "-channel", "thumbnails-generate"),
	}

	base := "http://" + addr
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	ws, resp, err := websocket.DefaultDialer.DialContext(ctx, "ws://"+addr+"/ws/notify?user=ada", http.Header{"Origin": {base}})
	if err != nil {
		t.Fatalf("dial: %v (%v)", err, resp)
	}
	defer ws.Close()
	var welcome map[string]any
	if err := ws.ReadJSON(&welcome); err != nil || welcome["type"] != "welcome" {
		t.Fatalf("welcome: %v, %v", welcome, err)
	}

	const jobs = 10
	for id := 1; id <= jobs; id++ {
		resp, err := http.PostForm(base+"/thumbnails/ada", url.Values{"id": {fmt.Sprint(id)}})
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusAccepted {
			t.Fatalf("POST /thumbnails/ada id=%d: %s", id, resp.Status)
		}
	}
	done := map[int]bool{}
	_ = ws.SetReadDeadline(time.Now().Add(20 * time.Second))
	for len(done) < jobs {
		var ev struct {
			Type string `json:"type"`
			ID   int    `json:"id"`
		}
		if err := ws.ReadJSON(&ev); err != nil {
			t.Fatalf("ada's socket after %d notifications: %v\nworker 1: %s\nworker 2: %s", len(done), err, workers[0].out.String(), workers[1].out.String())
		}
		if ev.Type != "thumbnail.done" || done[ev.ID] {
			t.Fatalf("ada's socket got %+v (already had %v)", ev, done)
		}
		done[ev.ID] = true
	}

	// Each job's line is printed once, by one of the workers.
	line := regexp.MustCompile(`(?m)^handled generate id=(\d+)$`)
	printed := map[string]int{}
	for _, w := range workers {
		w.stop(t)
		for _, m := range line.FindAllStringSubmatch(w.stdout.String(), -1) {
			printed[m[1]]++
		}
	}
	for id := 1; id <= jobs; id++ {
		if c := printed[fmt.Sprint(id)]; c != 1 {
			t.Errorf("id=%d printed %d times (stdout: %q / %q)", id, c, workers[0].stdout.String(), workers[1].stdout.String())
		}
	}
	for _, w := range workers {
		if !strings.Contains(w.out.String(), "worker stopped") {
			t.Errorf("%s did not stop gracefully:\n%s", w.name, w.out.String())
		}
	}
}

type proc struct {
	name        string
	cmd         *exec.Cmd
	stdout, out lockedBuffer // stdout alone; stderr
	waited      chan error
}

func start(t *testing.T, name, bin string, args ...string) *proc {
	t.Helper()
	p := &proc{name: name, cmd: exec.Command(bin, args...), waited: make(chan error, 1)}
	p.cmd.Stdout, p.cmd.Stderr = &p.stdout, &p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.waited <- p.cmd.Wait() }()
	t.Cleanup(func() {
		_ = p.cmd.Process.Kill()
		<-p.waited
		if t.Failed() {
			t.Logf("%s stdout:\n%s\nstderr:\n%s", name, p.stdout.String(), p.out.String())
		}
	})
	return p
}

// stop sends SIGINT and waits for a clean exit.
func (p *proc) stop(t *testing.T) {
	t.Helper()
	_ = p.cmd.Process.Signal(os.Interrupt)
	select {
	case err := <-p.waited:
		p.waited <- err // for the cleanup
		if err != nil {
			t.Errorf("%s exited with %v", p.name, err)
		}
	case <-time.After(10 * time.Second):
		t.Errorf("%s did not exit within 10 s of SIGINT", p.name)
	}
}

// listeningOn waits (30 s at most) for p's "listening" log line and returns the address in it.
// The process listens on port 0 and says where: a port picked by the test and closed again could
// be taken by another package's test before the process binds it, and a readiness dial would
// then find that test's server.
func listeningOn(t *testing.T, p *proc) string {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if m := listeningLine.FindStringSubmatch(p.out.String()); m != nil {
			return m[1]
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not say where it listens:\n%s", p.name, p.out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

var listeningLine = regexp.MustCompile(`msg=listening url=http://([^/\s]+)/`)

func flushPrefix(t *testing.T, prefix string) {
	l, err := redislayer.New(redislayer.Config{Hosts: []string{"redis://127.0.0.1:6379/3"}, Prefix: prefix})
	if err != nil {
		t.Error(err)
		return
	}
	defer l.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := l.Flush(ctx); err != nil {
		t.Error(err)
	}
}

type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *lockedBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *lockedBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
