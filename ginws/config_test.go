package ginws_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"ginws.dev/ginws"
	"ginws.dev/ginws/layer"
)

// mustPanicWithConfigError runs build and checks that it panics with a *ginws.ConfigError naming
// field.
func mustPanicWithConfigError(t *testing.T, field string, build func()) {
	t.Helper()
	defer func() {
		t.Helper()
		p := recover()
		err, _ := p.(error)
		var ce *ginws.ConfigError
		if !errors.As(err, &ce) || ce.Field != field || !strings.Contains(ce.Error(), field) {
			t.Fatalf("%s: panic %v, want a *ginws.ConfigError naming the field", field, p)
		}
	}()
	build()
}

func TestConfigRefusesInvalidFields(t *testing.T) {
	t.Parallel()
	neg := -time.Second
	servers := map[string]ginws.Config{
		"ginws.Config.HandshakeTimeout":  {HandshakeTimeout: neg},
		"ginws.Config.WriteTimeout":      {WriteTimeout: neg},
		"ginws.Config.PingTimeout":       {PingTimeout: neg},
		"ginws.Config.CloseTimeout":      {CloseTimeout: neg},
		"ginws.Config.DisconnectTimeout": {DisconnectTimeout: neg},
		"ginws.Config.ReadLimit":         {ReadLimit: -1},
		"ginws.Config.OutboundLimit":     {OutboundLimit: -1},
	}
	for field, cfg := range servers {
		mustPanicWithConfigError(t, field, func() { ginws.New(cfg) })
	}
	layers := map[string]layer.MemoryConfig{
		"layer.MemoryConfig.Capacity":                    {Capacity: -1},
		"layer.MemoryConfig.Expiry":                      {Expiry: neg},
		"layer.MemoryConfig.GroupExpiry":                 {GroupExpiry: neg},
		"layer.MemoryConfig.ChannelCapacity[1].Pattern":  {ChannelCapacity: []layer.CapacityRule{{Pattern: "ok.*", Capacity: 1}, {Pattern: "chat.[", Capacity: 5}}},
		"layer.MemoryConfig.ChannelCapacity[0].Capacity": {ChannelCapacity: []layer.CapacityRule{{Pattern: "http.*", Capacity: 0}}},
	}
	for field, cfg := range layers {
		mustPanicWithConfigError(t, field, func() { layer.NewMemory(cfg) })
	}
}

// Zero values are the defaults, and a negative PingInterval has its documented meaning (no pings).
func TestConfigZeroAndDocumentedNegatives(t *testing.T) {
	t.Parallel()
	ginws.New(ginws.Config{})
	ginws.New(ginws.Config{PingInterval: -1})
	layer.NewMemory(layer.MemoryConfig{})
}
