package yjs_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
	"time"

	"ginws.dev/ginws/yjs/ystore"

	"ginws.dev/ginws/layer"
	"ginws.dev/ginws/yjs"
	"ginws.dev/ginws/yjs/internal/jstest"
)

// The interop tests run real y-websocket 3.1.0 clients (testdata/js/driver.mjs, on Node with the
// pinned npm packages) against real yjs Servers.

var jsDir = jstest.Dir()

// needNode skips the test when Node or the npm packages are missing — or fails it when CI=true.
func needNode(t *testing.T) string { return jstest.Node(t, "y-websocket") }

type jsState struct {
	Text string `json:"text"`
	Map  string `json:"map"`
}

// runDriver runs one scenario of driver.mjs and decodes its JSON result into out.
func runDriver(t *testing.T, scenario string, args map[string]any, out any) {
	t.Helper()
	node := needNode(t)
	raw, err := json.Marshal(args)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "driver.mjs", scenario, string(raw))
	cmd.Dir = jsDir
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.WaitDelay = 5 * time.Second
	start := time.Now()
	runErr := cmd.Run()
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	last := lines[len(lines)-1]
	var failure struct {
		Error string `json:"error"`
	}
	if json.Unmarshal([]byte(last), &failure) == nil && failure.Error != "" || runErr != nil {
		t.Fatalf("driver %s failed: %v\nresult: %s\nstderr: %s", scenario, runErr, last, stderr.String())
	}
	t.Logf("driver %s (%.1fs): %s", scenario, time.Since(start).Seconds(), last)
	if err := json.Unmarshal([]byte(last), out); err != nil {
		t.Fatalf("driver %s printed %q: %v", scenario, last, err)
	}
}

func (a *app) url() string { return a.http.WSURL("/yjs") }

func TestInteropConverge(t *testing.T) {
	t.Parallel()
	a := newApp(t, nil, yjs.Config{})
	var res struct{ A, B jsState }
	runDriver(t, "converge", map[string]any{"urls": []string{a.url()}, "room": "team/notes/2024"}, &res)
	assertConverged(t, res.A, res.B)
	if rooms := a.ys.Rooms(); len(rooms) > 0 && rooms[0] != "team/notes/2024" {
		t.Fatalf("room name with slashes arrived as %q", rooms)
	}
}

func assertConverged(t *testing.T, a, b jsState) {
	t.Helper()
	if a != b {
		t.Fatalf("replicas differ:\n a: %+v\n b: %+v", a, b)
	}
	if !strings.Contains(a.Text, "A") || !strings.Contains(a.Text, "B") || strings.HasPrefix(a.Text, "HEAD") {
		t.Fatalf("text lacks an edit or a delete: %q", a.Text)
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(a.Map), &m); err != nil {
		t.Fatal(err)
	}
	if _, ok := m["A0"]; ok {
		t.Fatalf("deleted map key still there: %s", a.Map)
	}
	if m["B0"] == nil || m["A1"] == nil || m["shared"] == nil {
		t.Fatalf("map lacks entries: %s", a.Map)
	}
}

func TestInteropAwareness(t *testing.T) {
	t.Parallel()
	a := newApp(t, nil, yjs.Config{})
	var res struct {
		ASeesBob, BSeesAlice bool
		VictimRemovedBy      string
	}
	runDriver(t, "awareness", map[string]any{"urls": []string{a.url()}, "room": "aw"}, &res)
	if !res.ASeesBob || !res.BSeesAlice {
		t.Fatalf("awareness did not go both ways: %+v", res)
	}
	if res.VictimRemovedBy != "server" {
		t.Fatalf("the killed client was removed by %q, want by the server's removal message", res.VictimRemovedBy)
	}
}

func TestInteropOfflineEdits(t *testing.T) {
	t.Parallel()
	a := newApp(t, nil, yjs.Config{})
	var res struct {
		A, B          jsState
		BWhileOffline string
	}
	runDriver(t, "offline", map[string]any{"urls": []string{a.url()}, "room": "off"}, &res)
	if res.A != res.B {
		t.Fatalf("replicas differ: %+v / %+v", res.A, res.B)
	}
	for _, w := range []string{"shared", "online", "offline"} {
		if !strings.Contains(res.A.Text, w) {
			t.Fatalf("merged text %q lacks %q", res.A.Text, w)
		}
	}
	if strings.Contains(res.BWhileOffline, "online") {
		t.Fatalf("the offline client received an edit while disconnected: %q", res.BWhileOffline)
	}
}

func TestInteropLateJoiner(t *testing.T) {
	t.Parallel()
	a := newApp(t, nil, yjs.Config{})
	var res struct {
		Late      jsState
		SeesEarly bool
	}
	runDriver(t, "latejoin", map[string]any{"urls": []string{a.url()}, "room": "late"}, &res)
	if res.Late.Text != "written before you came" || res.Late.Map != `{"k":"v"}` || !res.SeesEarly {
		t.Fatalf("late joiner got %+v", res)
	}
}

// A room that emptied, and was unloaded, still serves its document.
func TestInteropUnloadedRoomServesDocument(t *testing.T) {
	t.Parallel()
	store := ystore.NewMemory()
	a := newApp(t, nil, yjs.Config{Store: store, UnloadDelay: -1, SaveDelay: 50 * time.Millisecond})
	var w jsState
	runDriver(t, "write", map[string]any{"url": a.url(), "room": "kept/doc", "text": "persisted"}, &w)
	waitFor(t, "the room to unload", func() bool { return len(a.ys.Rooms()) == 0 })
	if store.Len("kept/doc") == 0 {
		t.Fatal("nothing stored")
	}
	var r jsState
	runDriver(t, "read", map[string]any{"url": a.url(), "room": "kept/doc"}, &r)
	if r != w || r.Text != "persisted" {
		t.Fatalf("reloaded room: %+v, written: %+v", r, w)
	}
}

func TestInteropReadOnly(t *testing.T) {
	t.Parallel()
	a := newApp(t, nil, yjs.Config{})
	var res struct {
		Denied           string
		Writer, ReadOnly jsState
	}
	runDriver(t, "readonly", map[string]any{"url": a.url(), "room": "ro"}, &res)
	if !strings.Contains(res.Denied, "read-only") {
		t.Fatalf("permission denied message: %q", res.Denied)
	}
	if strings.Contains(res.Writer.Text, "evil") || strings.Contains(res.Writer.Map, "evil") {
		t.Fatalf("the read-only client's edit reached the writer: %+v", res.Writer)
	}
	var r jsState
	runDriver(t, "read", map[string]any{"url": a.url(), "room": "ro"}, &r)
	if r.Text != "good" || strings.Contains(r.Map, "evil") {
		t.Fatalf("the room after a read-only edit: %+v", r)
	}
}

// Two processes on one channel layer, one client on each.
func TestInteropCrossProcess(t *testing.T) {
	t.Parallel()
	lay := layer.NewMemory(layer.MemoryConfig{})
	defer lay.Close()
	store := ystore.NewMemory() // shared, as a Redis store would be
	a := newApp(t, lay, yjs.Config{Store: store})
	b := newApp(t, lay, yjs.Config{Store: store})
	urls := []string{a.url(), b.url()}
	var conv struct{ A, B jsState }
	runDriver(t, "converge", map[string]any{"urls": urls, "room": "x/1"}, &conv)
	assertConverged(t, conv.A, conv.B)
	var aw struct {
		ASeesBob, BSeesAlice bool
		VictimRemovedBy      string
	}
	runDriver(t, "awareness", map[string]any{"urls": urls, "room": "x/2"}, &aw)
	if !aw.ASeesBob || !aw.BSeesAlice || aw.VictimRemovedBy != "server" {
		t.Fatalf("cross-process awareness: %+v", aw)
	}
	var late struct {
		Late      jsState
		SeesEarly bool
	}
	runDriver(t, "latejoin", map[string]any{"urls": urls, "room": "x/3"}, &late)
	if late.Late.Text != "written before you came" || !late.SeesEarly {
		t.Fatalf("cross-process late joiner: %+v", late)
	}
}
