package redislayer_test

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"ginws.dev/ginws/layer"
	"ginws.dev/ginws/layertest"
	"ginws.dev/ginws/redislayer"
)

var quietLog = slog.New(slog.NewTextHandler(io.Discard, nil))

// Workers in two processes (two Layers on one Redis and prefix) share a named channel: each
// message is handled once, by one of them, and each worker handles its share in send order.
func TestWorkersShareAChannelOverRedis(t *testing.T) {
	prefix := testPrefix()
	var mu sync.Mutex
	seen := map[int64]int{}
	last := []int64{-1, -1}
	var workers []*layer.Worker
	var sender *redislayer.Layer
	for p := range 2 {
		lay := newLayer(t, redislayer.Config{Prefix: prefix, Capacity: 1000})
		sender = lay
		w := layer.NewWorker(lay, layer.WorkerConfig{Logger: quietLog, Channels: map[string]layer.Route{
			"thumbnails-generate": {Handlers: layer.Handlers{"generate": func(ctx context.Context, msg layer.Message) error {
				id, _ := msg.Int("id")
				mu.Lock()
				defer mu.Unlock()
				seen[id]++
				if id < last[p] {
					t.Errorf("worker %d handled %d after %d: a worker with Concurrency 1 must keep send order", p, id, last[p])
				}
				last[p] = id
				return nil
			}}},
		}})
		layertest.StartWorker(t, w)
		workers = append(workers, w)
	}
	ctx := ctxT(t)
	const n = 300
	for i := range n {
		if err := sender.Send(ctx, "thumbnails-generate", layer.Message{"type": "generate", "id": i}); err != nil {
			t.Fatal(err)
		}
	}
	var a, b layer.WorkerStats
	deadline := time.Now().Add(10 * time.Second)
	for a.Handled+b.Handled < n && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
		a, b = workers[0].Stats(), workers[1].Stats()
	}
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != n {
		t.Fatalf("%d of %d messages handled (%+v, %+v)", len(seen), n, a, b)
	}
	for id, c := range seen {
		if c != 1 {
			t.Fatalf("message %d handled %d times", id, c)
		}
	}
	if a.Handled == 0 || b.Handled == 0 {
		t.Errorf("one worker handled everything (%d and %d): the channel was not shared", a.Handled, b.Handled)
	}
}

// A worker that stops leaves the messages it has not taken in Redis, for the next worker; the
// handler it was running finishes, and its send after the stop goes through.
func TestWorkerStopLeavesMessagesInRedis(t *testing.T) {
	lay := newLayer(t, redislayer.Config{})
	started, release := make(chan struct{}), make(chan struct{})
	w := layer.NewWorker(lay, layer.WorkerConfig{Logger: quietLog, Channels: map[string]layer.Route{
		"slow-jobs": {Handlers: layer.Handlers{"job": func(ctx context.Context, msg layer.Message) error {
			close(started)
			<-release
			return lay.Send(ctx, "slow-jobs-done", layer.Message{"type": "done", "id": msg["id"]})
		}}},
	}})
	ctx := ctxT(t)
	for i := range 3 {
		if err := lay.Send(ctx, "slow-jobs", layer.Message{"type": "job", "id": i}); err != nil {
			t.Fatal(err)
		}
	}
	stop := layertest.StartWorker(t, w)
	<-started
	go func() { time.Sleep(50 * time.Millisecond); close(release) }()
	stop() // returns once the running handler has returned
	if m, err := lay.Receive(ctx, "slow-jobs-done"); err != nil || m["id"] != int64(0) {
		t.Fatalf("the handler running at the stop: %v, %v", m, err)
	}
	for i := 1; i < 3; i++ {
		m, err := lay.Receive(ctx, "slow-jobs")
		if err != nil || m["id"] != int64(i) {
			t.Fatalf("message %d should still be in Redis: %v, %v", i, m, err)
		}
	}
	if st := w.Stats(); st.Received != 1 {
		t.Errorf("the worker took %d messages, want only the one it handled", st.Received)
	}
}

// Closing the layer under a running worker ends Run with layer.ErrClosed.
func TestWorkerOnClosedRedisLayer(t *testing.T) {
	lay := newLayer(t, redislayer.Config{})
	w := layer.NewWorker(lay, layer.WorkerConfig{Logger: quietLog, Channels: map[string]layer.Route{
		"jobs": {Handlers: layer.Handlers{"job": func(context.Context, layer.Message) error { return nil }}},
	}})
	done := make(chan error, 1)
	go func() { done <- w.Run(context.Background()) }()
	time.Sleep(50 * time.Millisecond) // blocked in a receive
	_ = lay.Close()
	select {
	case err := <-done:
		if err != layer.ErrClosed {
			t.Fatalf("Run = %v, want layer.ErrClosed", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not end when its layer closed")
	}
}
