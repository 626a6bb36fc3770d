package layertest_test

import (
	"context"

	"testing"

	"ginws.dev/ginws/layer"
	"ginws.dev/ginws/layertest"
)

// newMemory is a layertest.Factory: for each scenario it makes a fresh, empty layer with the
// capacity and expiries the scenario asks for (zero fields mean the layer's defaults) and releases
// it when the scenario ends. A backend that shares state between tests, such as a Redis layer,
// gives each one a prefix of its own or flushes it in the cleanup.
func newMemory(t *testing.T, cfg layertest.Config) layer.Layer {
	l := layer.NewMemory(layer.MemoryConfig{Capacity: cfg.Capacity, Expiry: cfg.Expiry, GroupExpiry: cfg.GroupExpiry})
	t.Cleanup(func() { _ = l.Close() })
	return l
}

// A backend's package runs the whole suite from one test function:
//
//	func TestConformance(t *testing.T) { layertest.Run(t, newMemory) }
//
// ginws/layer's TestMemoryLayerConformance does exactly this for layer.Memory, and
// ginws/redislayer's tests for the Redis layer, on one shard and on two. The expiry scenarios
// wait a few seconds, since layers such as Redis count expiry in whole seconds.
func Example() {
	var t *testing.T // the test's own: this Example is compiled, not run
	layertest.Run(t, newMemory)
}

// A worker's handlers tested end to end: StartWorker runs the worker for the test, WaitHandled
// waits for its messages. The same test runs on the in-memory layer (no server) and on Redis:
// build the layer with redislayer.New(redislayer.Config{Prefix: "test" + <unique> + ":"}) instead.
func ExampleStartWorker() {
	var t *testing.T // the test's own: this Example is compiled, not run
	ctx := t.Context()
	lay := layer.NewMemory(layer.MemoryConfig{})
	w := layer.NewWorker(lay, layer.WorkerConfig{Channels: map[string]layer.Route{
		"thumbnails-generate": {Handlers: layer.Handlers{
			"generate": func(ctx context.Context, msg layer.Message) error {
				user, _ := msg.Str("user")
				return lay.GroupSend(ctx, "user."+user, layer.Message{"type": "thumbnail.done", "id": msg["id"]})
			},
		}},
	}})
	layertest.StartWorker(t, w) // stopped when the test ends

	_ = lay.GroupAdd(ctx, "user.ada", "probe") // stands in for ada's sockets
	_ = lay.Send(ctx, "thumbnails-generate", layer.Message{"type": "generate", "id": 42, "user": "ada"})
	if st := layertest.WaitHandled(t, w, 1); st.Handled != 1 {
		t.Fatalf("the handler failed: %+v", st)
	}
	done, err := lay.Receive(ctx, "probe")
	if err != nil || done.Type() != "thumbnail.done" {
		t.Fatalf("ada was told %v, %v", done, err)
	}
}
