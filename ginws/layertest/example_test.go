package layertest_test

import (
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
