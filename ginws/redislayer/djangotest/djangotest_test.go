package djangotest_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"net/http"
	"net/url"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"go.uber.org/goleak"

	"ginws.dev/ginws/layer"
	"ginws.dev/ginws/redislayer/djangotest"
	"ginws.dev/ginws/redislayer/redistest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// TestTypedJSON pins the wire form shared with the Python side (project/typedjson.py): floats keep
// a '.', bytes are wrapped, and decoding gives back the same kinds.
func TestTypedJSON(t *testing.T) {
	t.Parallel()
	in := layer.Message{"type": "t", "f": 2.0, "i": int8(2), "u": uint64(math.MaxUint64), "b": []byte{0, 255},
		"s": "é", "n": nil, "l": []any{}, "m": map[string]any{"x": float32(0.5)}, "nb": []byte(nil)}
	b, err := djangotest.MarshalTyped(in)
	if err != nil {
		t.Fatal(err)
	}
	const want = `{"b":{"__bytes__":"AP8="},"f":2.0,"i":2,"l":[],"m":{"x":0.5},"n":null,"nb":{"__bytes__":""},"s":"é","type":"t","u":18446744073709551615}`
	if string(b) != want {
		t.Fatalf("MarshalTyped:\n got %s\nwant %s", b, want)
	}
	got, err := djangotest.UnmarshalTyped(b)
	if err != nil {
		t.Fatal(err)
	}
	wantV := map[string]any{"type": "t", "f": 2.0, "i": int64(2), "u": uint64(math.MaxUint64), "b": []byte{0, 255},
		"s": "é", "n": nil, "l": []any{}, "m": map[string]any{"x": 0.5}, "nb": []byte{}}
	if !reflect.DeepEqual(got, wantV) {
		t.Fatalf("UnmarshalTyped: got %#v\nwant %#v", got, wantV)
	}
	for _, bad := range []any{math.NaN(), math.Inf(1), struct{}{}, map[string]any{"c": make(chan int)}} {
		if _, err := djangotest.MarshalTyped(bad); !errors.Is(err, djangotest.ErrNotTyped) {
			t.Errorf("MarshalTyped(%T): %v, want ErrNotTyped", bad, err)
		}
	}
	for _, bad := range []string{`{"__bytes__":"%%"}`, `12345678901234567890123`, `{} {}`, `{`} {
		if _, err := djangotest.UnmarshalTyped([]byte(bad)); err == nil {
			t.Errorf("UnmarshalTyped(%s) succeeded", bad)
		}
	}
}

// harnessRedisURL is this package's Redis database. Packages' tests run in parallel, and the
// Django interop tests of redislayer (DB 4) and of the chat example (DB 9) flush their own.
const harnessRedisURL = "redis://127.0.0.1:6379/8"

// TestDjangoProject checks the harness on its own: Daphne starts from the embedded project, the
// login view answers as the load tool expects, the interop consumer round-trips typed values
// through channels_redis, answers bad commands without dying, and the tutorial chat works.
func TestDjangoProject(t *testing.T) {
	djangotest.FlushDB(t, harnessRedisURL)
	d := djangotest.Start(t, djangotest.Options{RedisHosts: []string{harnessRedisURL}})
	ctx := ctxT(t)

	resp, err := http.PostForm(d.URL("/login"), url.Values{"username": {"alice"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || len(resp.Cookies()) == 0 {
		t.Fatalf("POST /login: %s, cookies %v; want 200 and a cookie", resp.Status, resp.Cookies())
	}

	c, err := djangotest.Dial(ctx, d.WSURL("/ws/interop/harness/"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if !strings.HasPrefix(c.Channel, "specific.") || !strings.Contains(c.Channel, "!") {
		t.Fatalf("channel name %q, want channels_redis's specific.<client>!<id>", c.Channel)
	}
	msg := layer.Message{"type": "x.y", "int": 1 << 40, "float": 1.0, "bytes": []byte("\x00\xff"), "s": "日本"}
	if err := c.GroupSend(ctx, "harness", msg); err != nil {
		t.Fatal(err)
	}
	got, err := c.Event(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := djangotest.Normalize(msg)
	if !reflect.DeepEqual(map[string]any(got), want) {
		t.Fatalf("Django to itself through Redis:\n got %#v\nwant %#v", got, want)
	}

	// Bad input is answered, and the consumer lives on.
	if err := c.Send(ctx, "no spaces allowed", layer.Message{"type": "x"}); err == nil || !strings.Contains(err.Error(), "answered") {
		t.Fatalf("send to a bad channel name: %v, want the consumer's error", err)
	}
	raw, _, err := websocket.DefaultDialer.DialContext(ctx, d.WSURL("/ws/interop/harness/"), nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, frame := range []string{`not json`, `[1]`, `{"cmd":"group_send","group":"harness","event":{"no":"type"}}`, `{"cmd":"nope"}`} {
		if err := raw.WriteMessage(websocket.TextMessage, []byte(frame)); err != nil {
			t.Fatal(err)
		}
	}
	_ = raw.Close()
	if err := c.Send(ctx, c.Channel, layer.Message{"type": "still.alive"}); err != nil {
		t.Fatal(err)
	}
	if ev, err := c.Event(ctx); err != nil || ev.Type() != "still.alive" {
		t.Fatalf("after bad commands: %v %v", ev, err)
	}

	// The tutorial chat: what one member types reaches every member of the room.
	dial := func() *websocket.Conn {
		conn, _, err := websocket.DefaultDialer.DialContext(ctx, d.WSURL("/ws/chat/lobby/"), nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		return conn
	}
	a, b := dial(), dial()
	// No wait needed: ChatConsumer.connect joins the group before it accepts.
	if err := a.WriteJSON(map[string]string{"message": "héllo"}); err != nil {
		t.Fatal(err)
	}
	for name, conn := range map[string]*websocket.Conn{"a": a, "b": b} {
		_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		_, data, err := conn.ReadMessage()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		var out map[string]string
		if err := json.Unmarshal(data, &out); err != nil || out["message"] != "héllo" {
			t.Fatalf("%s got %s (%v)", name, data, err)
		}
		if !strings.HasPrefix(string(data), `{"message":"`) {
			t.Fatalf("%s got %s: the load tool needs compact JSON", name, data)
		}
	}
}

// TestMissingServices: without Python or Redis the helpers say what to install or start, and a
// test that needs them skips — unless CI=true, where SkipOrFail fails it instead.
func TestMissingServices(t *testing.T) {
	// Not parallel: t.Setenv.
	err := djangotest.Check("/nonexistent/python3")
	if !errors.Is(err, djangotest.ErrMissing) || !strings.Contains(err.Error(), djangotest.InstallHint) {
		t.Fatalf("Check with no interpreter: %v, want ErrMissing with the install hint", err)
	}
	if _, err := djangotest.Run(context.Background(), djangotest.Options{Python: "/nonexistent/python3"}); !errors.Is(err, djangotest.ErrMissing) {
		t.Fatalf("Run with no interpreter: %v, want ErrMissing", err)
	}
	if err := djangotest.Command(context.Background(), "redis://127.0.0.1:1/4", "PING"); err == nil {
		t.Fatal("Command to a closed port succeeded")
	}
	if err := djangotest.Command(context.Background(), "http://127.0.0.1:6379/4", "PING"); err == nil {
		t.Fatal("Command accepted an http:// URL")
	}

	// A test that needs Redis, with Redis absent: skipped with a hint, or failed under CI=true.
	// It runs on a recorder rather than a subtest, so the run's skip count has only real skips.
	for _, ci := range []string{"", "true"} {
		t.Setenv("CI", ci)
		r := &outcome{TB: t}
		r.run(func(tb testing.TB) { djangotest.FlushDB(tb, "redis://127.0.0.1:1/4") })
		switch {
		case ci == "" && (!r.skipped || r.failed):
			t.Errorf("FlushDB with Redis absent: skipped %v, failed %v (%q); want a skip", r.skipped, r.failed, r.msg)
		case ci == "true" && (r.skipped || !r.failed):
			t.Errorf("FlushDB with Redis absent under CI=true: skipped %v, failed %v (%q); want a failure", r.skipped, r.failed, r.msg)
		case !strings.Contains(r.msg, "redis-server"):
			t.Errorf("CI=%q: the message does not say what to start: %q", ci, r.msg)
		}
	}
}

// TestDjangoWorker checks the worker half of the harness on its own: `manage.py runworker` starts
// from the embedded project, and the project's view POST /send hands it a job (Django to Django),
// which it handles as examples/worker does.
func TestDjangoWorker(t *testing.T) {
	o := djangotest.Options{RedisHosts: []string{harnessRedisURL}, Prefix: fmt.Sprintf("asgidjworker%08x", rand.Uint32())}
	redistest.Need(t) // a prefix of its own: no flush, so it runs beside TestDjangoProject
	d := djangotest.Start(t, o)
	w := djangotest.StartWorker(t, o, "thumbnails-generate")
	ctx := ctxT(t)
	if err := d.Send(ctx, "thumbnails-generate", layer.Message{"type": "generate", "id": 5}); err != nil {
		t.Fatal(err)
	}
	for !strings.Contains(w.Output(), "handled generate id=5\n") {
		select {
		case <-ctx.Done():
			t.Fatalf("the Django worker did not handle the job:\n%s", w.Output())
		case <-time.After(20 * time.Millisecond):
		}
	}
	if err := d.Send(ctx, "thumbnails-generate", layer.Message{"no": "type"}); err == nil || !strings.Contains(err.Error(), "400") {
		t.Errorf("POST /send without a type: %v, want 400", err)
	}
	if _, err := djangotest.RunWorker(ctx, o); err == nil {
		t.Error("RunWorker with no channel must fail")
	}
}

// outcome records how a helper ended a test — skipped, or failed, and with what message — without
// ending the real test.
type outcome struct {
	testing.TB
	skipped, failed bool
	msg             string
}

// run calls f with the recorder on a goroutine of its own, which Skip and Fatal end.
func (o *outcome) run(f func(testing.TB)) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		f(o)
	}()
	<-done
}

func (o *outcome) Helper() {}

func (o *outcome) Skip(args ...any) {
	o.skipped, o.msg = true, fmt.Sprint(args...)
	runtime.Goexit()
}

func (o *outcome) Fatal(args ...any) {
	o.failed, o.msg = true, fmt.Sprint(args...)
	runtime.Goexit()
}

func (o *outcome) Fatalf(format string, args ...any) { o.Fatal(fmt.Sprintf(format, args...)) }
