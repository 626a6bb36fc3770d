package layertest_test

import (
	"context"
	"errors"
	"testing"

	"ginws.dev/ginws/layer"
	"ginws.dev/ginws/layertest"
)

// The kit on the in-memory layer: StartWorker serves until the test ends, WaitHandled counts every
// way a message can finish.
func TestStartWorkerAndWaitHandled(t *testing.T) {
	lay := layer.NewMemory(layer.MemoryConfig{})
	w := layer.NewWorker(lay, layer.WorkerConfig{Logger: quietLog, Channels: map[string]layer.Route{"jobs": {Handlers: layer.Handlers{
		"ok":   func(context.Context, layer.Message) error { return nil },
		"fail": func(context.Context, layer.Message) error { return errors.New("no") },
	}}}})
	stop := layertest.StartWorker(t, w)
	for _, typ := range []string{"ok", "fail", "unknown", "ok"} {
		if err := lay.Send(t.Context(), "jobs", layer.Message{"type": typ}); err != nil {
			t.Fatal(err)
		}
	}
	st := layertest.WaitHandled(t, w, 4)
	if st.Handled != 2 || st.Failed != 1 || st.Unhandled != 1 {
		t.Fatalf("Stats = %+v", st)
	}
	stop()
	stop() // idempotent, and the cleanup calls it again
}
