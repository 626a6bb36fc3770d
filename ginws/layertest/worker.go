package layertest

import (
	"context"
	"sync"
	"testing"
	"time"

	"ginws.dev/ginws/layer"
)

// StartWorker runs w until the test ends, on whatever layer w was built with: layer.Memory for a
// fast test of the handlers, a Redis layer (with a key prefix of the test's own) for the real
// thing. The returned stop ends Run and waits for it, as the test's cleanup also does; the test
// fails if Run returns an error or takes more than 10 s to stop.
//
// To test one handler without a layer or a goroutine, call w.Dispatch instead.
func StartWorker(t testing.TB, w *layer.Worker) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("layertest: Worker.Run: %v", err)
				}
			case <-time.After(10 * time.Second):
				t.Errorf("layertest: Worker.Run did not return within 10 s of its stop (a handler still running?)")
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// WaitHandled waits until w has finished n messages since it was made — handled, failed, panicked
// or dropped for want of a handler — and no handler is running, and returns its counters. It
// fails the test after 10 s.
func WaitHandled(t testing.TB, w *layer.Worker, n uint64) layer.WorkerStats {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		st := w.Stats()
		if finished(st) >= n && st.Running == 0 {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("layertest: waited 10 s for %d messages to be finished, the worker has %+v", n, st)
		}
		time.Sleep(time.Millisecond)
	}
}

func finished(st layer.WorkerStats) uint64 {
	return st.Handled + st.Failed + st.Panicked + st.Unhandled
}
