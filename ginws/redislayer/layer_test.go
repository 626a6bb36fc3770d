package redislayer_test

import (
	"errors"
	"testing"

	"ginws.dev/ginws/layer"
	"ginws.dev/ginws/layertest"
	"ginws.dev/ginws/redislayer"
	"ginws.dev/ginws/redislayer/redistest"
)

func conformance(hosts ...string) layertest.Factory {
	return func(t *testing.T, cfg layertest.Config) layer.Layer {
		return newLayer(t, redislayer.Config{
			Hosts: hosts, Capacity: cfg.Capacity, Expiry: cfg.Expiry, GroupExpiry: cfg.GroupExpiry, History: cfg.History,
		})
	}
}

func TestConformanceOneHost(t *testing.T) {
	redistest.Need(t)
	t.Parallel()
	layertest.Run(t, conformance(db1))
}

// Two shards: DB 1 and DB 2 of the same server stand for two Redis servers.
func TestConformanceTwoShards(t *testing.T) {
	redistest.Need(t)
	t.Parallel()
	layertest.Run(t, conformance(db1, db2))
}

// All process-local channels of a process share one Redis key, bounded by ProcessCapacity; normal
// channels by Capacity and the ChannelCapacity rules.
func TestProcessCapacity(t *testing.T) {
	t.Parallel()
	for _, rules := range [][]layer.CapacityRule{nil, {{Pattern: "big.*", Capacity: 50}}} { // script paths
		l := newLayer(t, redislayer.Config{Capacity: 1, ProcessCapacity: 2, ChannelCapacity: rules})
		a, _ := l.NewChannel(ctxT(t), "")
		b, _ := l.NewChannel(ctxT(t), "")
		if err := l.Send(ctxT(t), a, layer.Message{"type": "1"}); err != nil {
			t.Fatal(err)
		}
		if err := l.Send(ctxT(t), b, layer.Message{"type": "2"}); err != nil {
			t.Fatalf("the process key holds 2: %v", err)
		}
		if err := l.Send(ctxT(t), a, layer.Message{"type": "3"}); !errors.Is(err, layer.ErrChannelFull) {
			t.Fatalf("third send to the process key: %v, want ErrChannelFull", err)
		}
		for _, ch := range []string{a, "plain"} {
			if err := l.GroupAdd(ctxT(t), "g", ch); err != nil {
				t.Fatal(err)
			}
		}
		for i := 0; i < 2; i++ {
			if err := l.GroupSend(ctxT(t), "g", layer.Message{"type": "g"}); err != nil {
				t.Fatal(err)
			}
		}
		// Both sends were dropped for the full process key; the second for "plain" (capacity 1).
		if st := l.Stats(); st.Dropped != 3 || st.Sent != 3 {
			t.Errorf("rules %v: Sent %d, Dropped %d; want 3 and 3", rules, st.Sent, st.Dropped)
		}
	}
}
