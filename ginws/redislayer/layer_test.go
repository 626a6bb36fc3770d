package redislayer_test

import (
	"testing"

	"ginws.dev/ginws"
	"ginws.dev/ginws/layertest"
	"ginws.dev/ginws/redislayer"
)

func conformance(hosts ...string) layertest.Factory {
	return func(t *testing.T, cfg layertest.Config) ginws.Layer {
		return newLayer(t, redislayer.Config{
			Hosts: hosts, Capacity: cfg.Capacity, Expiry: cfg.Expiry, GroupExpiry: cfg.GroupExpiry,
		})
	}
}

func TestConformanceOneHost(t *testing.T) {
	needRedis(t)
	t.Parallel()
	layertest.Run(t, conformance(db1))
}

// Two shards: DB 1 and DB 2 of the same server stand for two Redis servers.
func TestConformanceTwoShards(t *testing.T) {
	needRedis(t)
	t.Parallel()
	layertest.Run(t, conformance(db1, db2))
}
