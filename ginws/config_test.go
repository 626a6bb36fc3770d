package ginws_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"ginws.dev/ginws"
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
	layers := map[string]ginws.MemoryConfig{
		"ginws.MemoryConfig.Capacity":                    {Capacity: -1},
		"ginws.MemoryConfig.Expiry":                      {Expiry: neg},
		"ginws.MemoryConfig.GroupExpiry":                 {GroupExpiry: neg},
		"ginws.MemoryConfig.ChannelCapacity[1].Pattern":  {ChannelCapacity: []ginws.CapacityRule{{Pattern: "ok.*", Capacity: 1}, {Pattern: "chat.[", Capacity: 5}}},
		"ginws.MemoryConfig.ChannelCapacity[0].Capacity": {ChannelCapacity: []ginws.CapacityRule{{Pattern: "http.*", Capacity: 0}}},
	}
	for field, cfg := range layers {
		mustPanicWithConfigError(t, field, func() { ginws.NewMemoryLayer(cfg) })
	}
}

// Zero values are the defaults, and a negative PingInterval has its documented meaning (no pings).
func TestConfigZeroAndDocumentedNegatives(t *testing.T) {
	ginws.New(ginws.Config{})
	ginws.New(ginws.Config{PingInterval: -1})
	ginws.NewMemoryLayer(ginws.MemoryConfig{})
}
