package yjs_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	"ginws.dev/ginws/yjs/ystore"

	"github.com/gin-gonic/gin"

	"ginws.dev/ginws"
	"ginws.dev/ginws/yjs"
)

// Fifty stock y-websocket clients in one room. Each joiner re-sends the states of everybody
// already there (a stock client relays every remote awareness change it applies): relays are not
// claims, so nobody is closed for "too many awareness clients", and everybody sees everybody.
func TestInteropCrowdAwareness(t *testing.T) {
	t.Parallel()
	const n = 50
	a := newApp(t, nil, yjs.Config{})
	var res struct {
		Seen   []int
		Closes []struct {
			Client, Code int
			Reason       string
		}
	}
	runDriver(t, "crowd", map[string]any{"url": a.url(), "room": "crowd", "n": n}, &res)
	if len(res.Closes) > 0 {
		t.Errorf("%d closes, want none: %+v", len(res.Closes), res.Closes)
	}
	if len(res.Seen) != n {
		t.Fatalf("%d clients reported, want %d", len(res.Seen), n)
	}
	for i, seen := range res.Seen {
		if seen != n {
			t.Errorf("client %d sees %d users, want %d (all: %v)", i, seen, n, res.Seen)
			break
		}
	}
}

// After a server restart two stock clients reconnect at once, and each sees the other again
// within a round trip or two of reconnecting — not at the other's next awareness renewal, 15 s
// after its last change (13-14 s before the server told reconnecting clients to renew).
func TestInteropAwarenessAfterRestart(t *testing.T) {
	t.Parallel()
	node := needNode(t)
	store := ystore.NewMemory() // the document survives the restart, as in a real store
	srv := startProcess(t, "127.0.0.1:0", store)
	addr := srv.addr
	defer func() { srv.stop(t) }()

	raw, _ := json.Marshal(map[string]any{"url": "ws://" + addr + "/yjs", "room": "restart"})
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "driver.mjs", "restart", string(raw))
	cmd.Dir = jsDir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	cmd.WaitDelay = 5 * time.Second
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := bufio.NewScanner(stdout)
	next := func() string {
		if !lines.Scan() {
			_ = cmd.Wait()
			t.Fatalf("driver ended early: %v\nstderr: %s", lines.Err(), stderr.String())
		}
		return lines.Text()
	}
	if l := next(); !strings.Contains(l, `"ready"`) {
		_ = cmd.Wait()
		t.Fatalf("driver: %s\nstderr: %s", l, stderr.String())
	}
	srv.stop(t)
	srv = startProcess(t, addr, store)
	last := next()
	if err := cmd.Wait(); err != nil {
		t.Fatalf("driver: %v\nresult: %s\nstderr: %s", err, last, stderr.String())
	}
	t.Logf("driver restart: %s", last)
	var res struct {
		AReconnected, BReconnected float64
		ASeesBob, BSeesAlice       float64
		APeers, BPeers             int
	}
	if err := json.Unmarshal([]byte(last), &res); err != nil {
		t.Fatalf("driver printed %q: %v", last, err)
	}
	if res.APeers != 1 || res.BPeers != 1 {
		t.Errorf("peers seen after reconnecting: a %d, b %d, want 1 each", res.APeers, res.BPeers)
	}
	// A generous bound: well under the 15 s renewal that made them visible before, far above the
	// round trips it takes now, so a loaded machine does not make it flaky.
	const bound = 5.0
	if res.ASeesBob > bound || res.BSeesAlice > bound {
		t.Errorf("after reconnecting, a saw bob after %.2fs and b saw alice after %.2fs; want both under %.0fs", res.ASeesBob, res.BSeesAlice, bound)
	}
}

// process is one server process for a restart test: a ginws Server with its own channel layer
// and a yjs Server, on a real listener that can be opened again on the same address.
type process struct {
	addr string
	ws   *ginws.Server
	ys   *yjs.Server
	http *http.Server
	done chan struct{}
}

func startProcess(t *testing.T, addr string, store ystore.Store) *process {
	t.Helper()
	ws := ginws.New(ginws.Config{Logger: quietLogger()})
	ys := yjs.New(ws, yjs.Config{Store: store, Logger: quietLogger()})
	r := gin.New()
	r.GET("/yjs/*room", ws.Mount(ys.Consumer))
	var ln net.Listener
	var err error
	for range 50 { // the old listener's port may take a moment to be free again
		if ln, err = net.Listen("tcp", addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	p := &process{addr: ln.Addr().String(), ws: ws, ys: ys, http: &http.Server{Handler: r}, done: make(chan struct{})}
	go func() {
		defer close(p.done)
		if err := p.http.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("serve: %v", err)
		}
	}()
	return p
}

// stop shuts the process down as a deploy would: connections closed, rooms saved.
func (p *process) stop(t *testing.T) {
	t.Helper()
	if p.ws == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := p.ws.Shutdown(ctx); err != nil {
		t.Errorf("ginws shutdown: %v", err)
	}
	if err := p.ys.Close(ctx); err != nil {
		t.Errorf("yjs close: %v", err)
	}
	_ = p.http.Close()
	<-p.done
	p.ws = nil
}
