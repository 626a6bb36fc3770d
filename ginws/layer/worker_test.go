package layer_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"ginws.dev/ginws/layer"
	"ginws.dev/ginws/layertest"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func send(t *testing.T, l layer.Layer, channel string, msg layer.Message) {
	t.Helper()
	if err := l.Send(context.Background(), channel, msg); err != nil {
		t.Fatalf("Send(%q, %v): %v", channel, msg, err)
	}
}

// Dispatch follows Channels' rules for types, as consumers do, and reports what Run would log.
func TestWorkerDispatchRules(t *testing.T) {
	var got []string
	w := layer.NewWorker(layer.NewMemory(layer.MemoryConfig{}), layer.WorkerConfig{
		Logger: quiet,
		Channels: map[string]layer.Route{"jobs": {Handlers: layer.Handlers{
			"image.resize": func(ctx context.Context, msg layer.Message) error {
				got = append(got, msg.Type())
				return nil
			},
			"fail":  func(context.Context, layer.Message) error { return errors.New("disk full") },
			"panic": func(context.Context, layer.Message) error { panic("boom") },
		}}},
	})
	ctx := context.Background()
	for _, typ := range []string{"image.resize", "image_resize"} {
		if err := w.Dispatch(ctx, "jobs", layer.Message{"type": typ}); err != nil {
			t.Errorf("Dispatch(%q): %v", typ, err)
		}
	}
	if fmt.Sprint(got) != "[image.resize image_resize]" {
		t.Errorf("handler saw %v, want both spellings of one type", got)
	}
	for _, tc := range []struct {
		msg  layer.Message
		want string
	}{
		{layer.Message{"type": "unknown"}, `no handler for the event type "unknown" on channel "jobs"`},
		{layer.Message{"id": 1}, `has no "type"`},
		{layer.Message{"type": 7}, `has no "type"`},
		{layer.Message{"type": "_image.resize"}, "must not start with '_' or '.'"},
		{layer.Message{"type": ".image.resize"}, "must not start with '_' or '.'"},
		{layer.Message{"type": "fail"}, "disk full"},
		{layer.Message{"type": "panic"}, `handler for "panic" on channel "jobs" panicked: boom`},
	} {
		err := w.Dispatch(ctx, "jobs", tc.msg)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Dispatch(%v) = %v, want an error containing %q", tc.msg, err, tc.want)
		}
	}
	if err := w.Dispatch(ctx, "jobs", layer.Message{"type": "nope"}); !errors.Is(err, layer.ErrNoHandler) {
		t.Errorf("an unknown type: %v, want ErrNoHandler", err)
	}
	if err := w.Dispatch(ctx, "elsewhere", layer.Message{"type": "image.resize"}); err == nil {
		t.Error("Dispatch to a channel the worker does not serve must fail")
	}
	st := w.Stats()
	want := layer.WorkerStats{Handled: 2, Failed: 1, Panicked: 1, Unhandled: 6}
	if st != want {
		t.Errorf("Stats = %+v, want %+v", st, want)
	}
}

// With the default concurrency of 1, a channel's messages are handled one at a time, in order.
func TestWorkerOrderAndOneAtATime(t *testing.T) {
	l := layer.NewMemory(layer.MemoryConfig{Capacity: 1000})
	var running, overlap atomic.Int32
	var got []int64
	w := layer.NewWorker(l, layer.WorkerConfig{Logger: quiet, Channels: map[string]layer.Route{"ordered": {Handlers: layer.Handlers{
		"n": func(ctx context.Context, msg layer.Message) error {
			if running.Add(1) > 1 {
				overlap.Add(1)
			}
			defer running.Add(-1)
			n, _ := msg.Int("n")
			got = append(got, n) // no lock: handlers of one channel never overlap
			time.Sleep(50 * time.Microsecond)
			return nil
		},
	}}}})
	layertest.StartWorker(t, w)
	const n = 300
	for i := range n {
		send(t, l, "ordered", layer.Message{"type": "n", "n": i})
	}
	waitFor(t, "every message handled", func() bool { return w.Stats().Handled == n })
	if overlap.Load() != 0 {
		t.Errorf("handlers of one channel overlapped %d times", overlap.Load())
	}
	for i, v := range got {
		if v != int64(i) {
			t.Fatalf("message %d handled in position %d: order lost", v, i)
		}
	}
}

// A channel with Concurrency n runs n handlers at once, and takes no message from the layer before
// a handler is free for it: the others stay in the layer, for other workers.
func TestWorkerConcurrencyBoundAndNoPrefetch(t *testing.T) {
	l := layer.NewMemory(layer.MemoryConfig{})
	gate := make(chan struct{})
	var running, peak atomic.Int32
	w := layer.NewWorker(l, layer.WorkerConfig{Logger: quiet, Channels: map[string]layer.Route{"wide": {Concurrency: 4, Handlers: layer.Handlers{
		"job": func(ctx context.Context, msg layer.Message) error {
			r := running.Add(1)
			for p := peak.Load(); r > p && !peak.CompareAndSwap(p, r); p = peak.Load() {
			}
			<-gate
			running.Add(-1)
			return nil
		},
	}}}})
	for i := range 10 {
		send(t, l, "wide", layer.Message{"type": "job", "i": i})
	}
	stop := layertest.StartWorker(t, w)
	waitFor(t, "four handlers running", func() bool { return w.Stats().Running == 4 })
	time.Sleep(20 * time.Millisecond) // a fifth would have been taken by now
	if st := w.Stats(); st.Received != 4 || st.Running != 4 {
		t.Fatalf("with 4 handlers blocked: %+v, want 4 received and running (no prefetch)", st)
	}
	// The six others are still in the layer: another consumer could take them.
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if m, err := l.Receive(ctx, "wide"); err != nil || m.Type() != "job" {
		t.Fatalf("a message left in the layer: %v, %v", m, err)
	}
	close(gate)
	waitFor(t, "the rest handled", func() bool { return w.Stats().Handled == 9 })
	stop()
	if p := peak.Load(); p != 4 {
		t.Errorf("peak concurrency %d, want 4", p)
	}
}

// Stopping finishes the handlers in flight, with a context that is not canceled at once, and takes
// no more messages: those wait in the layer.
func TestWorkerGracefulStop(t *testing.T) {
	l := layer.NewMemory(layer.MemoryConfig{})
	started := make(chan struct{})
	release := make(chan struct{})
	var handlerCtxErr atomic.Value
	w := layer.NewWorker(l, layer.WorkerConfig{Logger: quiet, Channels: map[string]layer.Route{"slow": {Handlers: layer.Handlers{
		"job": func(ctx context.Context, msg layer.Message) error {
			close(started)
			<-release
			handlerCtxErr.Store(fmt.Sprint(ctx.Err()))
			return l.Send(ctx, "done", layer.Message{"type": "done"}) // a last send after the stop
		},
	}}}})
	send(t, l, "slow", layer.Message{"type": "job"})
	send(t, l, "slow", layer.Message{"type": "job", "second": true})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	<-started
	cancel()
	select {
	case err := <-done:
		t.Fatalf("Run returned (%v) while a handler was running", err)
	case <-time.After(50 * time.Millisecond):
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	if e := handlerCtxErr.Load(); e != "<nil>" {
		t.Errorf("the handler's context was %v during the stop, want not canceled", e)
	}
	rctx, rcancel := context.WithTimeout(context.Background(), time.Second)
	defer rcancel()
	if _, err := l.Receive(rctx, "done"); err != nil {
		t.Errorf("the handler's send after the stop: %v", err)
	}
	if m, err := l.Receive(rctx, "slow"); err != nil || m["second"] != true {
		t.Errorf("the message not yet taken must stay in the layer: %v, %v", m, err)
	}
	if err := w.Run(context.Background()); err == nil {
		t.Error("a second Run must fail")
	}
}

// After StopTimeout, a handler still running sees its context canceled; Run waits for it.
func TestWorkerStopTimeout(t *testing.T) {
	l := layer.NewMemory(layer.MemoryConfig{})
	started := make(chan struct{})
	w := layer.NewWorker(l, layer.WorkerConfig{Logger: quiet, StopTimeout: 30 * time.Millisecond, Channels: map[string]layer.Route{"slow": {Handlers: layer.Handlers{
		"job": func(ctx context.Context, msg layer.Message) error {
			close(started)
			<-ctx.Done()
			return ctx.Err()
		},
	}}}})
	send(t, l, "slow", layer.Message{"type": "job"})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	<-started
	t0 := time.Now()
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if d := time.Since(t0); d < 30*time.Millisecond || d > 5*time.Second {
		t.Errorf("Run returned %v after the stop, want just after the 30 ms StopTimeout", d)
	}
	if st := w.Stats(); st.Failed != 1 {
		t.Errorf("Stats = %+v, want the canceled handler counted as failed", st)
	}
}

// A panic costs its message only: the worker goes on with the next ones.
func TestWorkerPanicContained(t *testing.T) {
	l := layer.NewMemory(layer.MemoryConfig{})
	var logs strings.Builder
	var mu sync.Mutex
	log := slog.New(slog.NewTextHandler(lockedWriter{&mu, &logs}, nil))
	w := layer.NewWorker(l, layer.WorkerConfig{Logger: log, Channels: map[string]layer.Route{"c": {Handlers: layer.Handlers{
		"job": func(ctx context.Context, msg layer.Message) error {
			if msg["boom"] == true {
				var m map[string]int
				m["x"] = 1 // a nil map write: a runtime panic
			}
			return nil
		},
	}}}})
	layertest.StartWorker(t, w)
	send(t, l, "c", layer.Message{"type": "job", "boom": true})
	send(t, l, "c", layer.Message{"type": "job"})
	send(t, l, "c", layer.Message{"type": "no.such"})
	send(t, l, "c", layer.Message{"type": "job"})
	waitFor(t, "the messages after the panic", func() bool { st := w.Stats(); return st.Handled == 2 && st.Unhandled == 1 })
	if st := w.Stats(); st.Panicked != 1 {
		t.Errorf("Stats = %+v, want 1 panic", st)
	}
	mu.Lock()
	defer mu.Unlock()
	for _, want := range []string{"panicked", "assignment to entry in nil map", "worker_test.go", `type=no.such`} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, logs.String())
		}
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// Several workers on one channel share its messages: each is handled once, by one of them.
func TestWorkersShareAChannel(t *testing.T) {
	l := layer.NewMemory(layer.MemoryConfig{Capacity: 1000})
	var mu sync.Mutex
	seen := map[int64]int{}
	perWorker := make([]int, 3)
	var workers []*layer.Worker
	for i := range perWorker {
		w := layer.NewWorker(l, layer.WorkerConfig{Logger: quiet, Channels: map[string]layer.Route{"shared": {Concurrency: 2, Handlers: layer.Handlers{
			"job": func(ctx context.Context, msg layer.Message) error {
				id, _ := msg.Int("id")
				mu.Lock()
				seen[id]++
				perWorker[i]++
				mu.Unlock()
				time.Sleep(100 * time.Microsecond)
				return nil
			},
		}}}})
		layertest.StartWorker(t, w)
		workers = append(workers, w)
	}
	const n = 600
	for i := range n {
		send(t, l, "shared", layer.Message{"type": "job", "id": i})
	}
	waitFor(t, "every message", func() bool {
		var h uint64
		for _, w := range workers {
			h += w.Stats().Handled
		}
		return h >= n
	})
	time.Sleep(20 * time.Millisecond) // a duplicate would show now
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != n {
		t.Fatalf("%d distinct messages handled, want %d", len(seen), n)
	}
	for id, c := range seen {
		if c != 1 {
			t.Fatalf("message %d handled %d times", id, c)
		}
	}
	for i, c := range perWorker {
		if c == 0 {
			t.Errorf("worker %d handled nothing (%v): the channel was not shared", i, perWorker)
		}
	}
}

// Each channel has its own loop and its own bound: a busy channel does not hold up another.
func TestWorkerChannelsAreIndependent(t *testing.T) {
	l := layer.NewMemory(layer.MemoryConfig{})
	block := make(chan struct{})
	fast := make(chan struct{}, 1)
	w := layer.NewWorker(l, layer.WorkerConfig{Logger: quiet, Channels: map[string]layer.Route{
		"busy": {Handlers: layer.Handlers{"job": func(context.Context, layer.Message) error { <-block; return nil }}},
		"fast": {Handlers: layer.Handlers{"job": func(context.Context, layer.Message) error { fast <- struct{}{}; return nil }}},
	}})
	send(t, l, "busy", layer.Message{"type": "job"})
	send(t, l, "fast", layer.Message{"type": "job"})
	stop := layertest.StartWorker(t, w)
	select {
	case <-fast:
	case <-time.After(5 * time.Second):
		t.Fatal("a blocked handler on one channel held up another channel")
	}
	close(block)
	stop()
}

// A closed layer ends Run with ErrClosed; failed receives are retried with a backoff.
func TestWorkerLayerFailures(t *testing.T) {
	t.Run("closed", func(t *testing.T) {
		l := layer.NewMemory(layer.MemoryConfig{})
		w := layer.NewWorker(l, layer.WorkerConfig{Logger: quiet, Channels: map[string]layer.Route{"c": {Handlers: layer.Handlers{"x": func(context.Context, layer.Message) error { return nil }}}}})
		done := make(chan error, 1)
		go func() { done <- w.Run(context.Background()) }()
		time.Sleep(10 * time.Millisecond)
		_ = l.Close()
		select {
		case err := <-done:
			if !errors.Is(err, layer.ErrClosed) {
				t.Fatalf("Run = %v, want ErrClosed", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("Run did not end when its layer closed")
		}
	})
	t.Run("retried", func(t *testing.T) {
		l := &flaky{Memory: layer.NewMemory(layer.MemoryConfig{})}
		l.failures.Store(2)
		w := layer.NewWorker(l, layer.WorkerConfig{Logger: quiet, Channels: map[string]layer.Route{"c": {Handlers: layer.Handlers{"x": func(context.Context, layer.Message) error { return nil }}}}})
		send(t, l, "c", layer.Message{"type": "x"})
		layertest.StartWorker(t, w)
		waitFor(t, "the message after two failed receives", func() bool { return w.Stats().Handled == 1 })
		if st := w.Stats(); st.ReceiveErrors != 2 {
			t.Errorf("Stats = %+v, want 2 receive errors", st)
		}
	})
}

// flaky fails its first Receives, as a Redis that is restarting would.
type flaky struct {
	*layer.Memory
	failures atomic.Int32
}

func (f *flaky) Receive(ctx context.Context, channel string) (layer.Message, error) {
	if f.failures.Add(-1) >= 0 {
		return nil, errors.New("connection refused")
	}
	return f.Memory.Receive(ctx, channel)
}

func TestWorkerConfigErrors(t *testing.T) {
	ok := layer.Handlers{"x": func(context.Context, layer.Message) error { return nil }}
	l := layer.NewMemory(layer.MemoryConfig{})
	for _, tc := range []struct {
		name  string
		l     layer.Layer
		cfg   layer.WorkerConfig
		field string
	}{
		{"nil layer", nil, layer.WorkerConfig{Channels: map[string]layer.Route{"c": {Handlers: ok}}}, "layer.NewWorker(l)"},
		{"no channels", l, layer.WorkerConfig{}, "layer.WorkerConfig.Channels"},
		{"bad name", l, layer.WorkerConfig{Channels: map[string]layer.Route{"a b": {Handlers: ok}}}, "layer.WorkerConfig.Channels"},
		{"process-local", l, layer.WorkerConfig{Channels: map[string]layer.Route{"specific.x!y": {Handlers: ok}}}, "layer.WorkerConfig.Channels"},
		{"negative concurrency", l, layer.WorkerConfig{Channels: map[string]layer.Route{"c": {Handlers: ok, Concurrency: -1}}}, `layer.WorkerConfig.Channels["c"].Concurrency`},
		{"no handlers", l, layer.WorkerConfig{Channels: map[string]layer.Route{"c": {}}}, `layer.WorkerConfig.Channels["c"].Handlers`},
		{"nil handler", l, layer.WorkerConfig{Channels: map[string]layer.Route{"c": {Handlers: layer.Handlers{"x": nil}}}}, `layer.WorkerConfig.Channels["c"].Handlers["x"]`},
		{"bad type", l, layer.WorkerConfig{Channels: map[string]layer.Route{"c": {Handlers: layer.Handlers{"_x": ok["x"]}}}}, `layer.WorkerConfig.Channels["c"].Handlers["_x"]`},
		{"same handler twice", l, layer.WorkerConfig{Channels: map[string]layer.Route{"c": {Handlers: layer.Handlers{"a.b": ok["x"], "a_b": ok["x"]}}}}, `layer.WorkerConfig.Channels["c"].Handlers["a_b"]`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			defer func() {
				ce, _ := recover().(*layer.ConfigError)
				if ce == nil || ce.Field != tc.field {
					t.Fatalf("NewWorker panicked with %v, want a *ConfigError for %s", ce, tc.field)
				}
			}()
			layer.NewWorker(tc.l, tc.cfg)
		})
	}
}
