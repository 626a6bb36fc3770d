package ginws

import (
	"context"
	"testing"

	"ginws.dev/ginws/layer"
)

// relayOf must recognize RelayJSON's handlers of both build signatures, and nothing else.
func TestRelayOf(t *testing.T) {
	a := RelayJSON(func(ev layer.Message) (any, error) { return nil, nil })
	b := RelayJSON(func(ev layer.Message, pos layer.Position) (any, error) { return nil, nil })
	if relayOf(a) == nil || relayOf(b) == nil || relayOf(a) == relayOf(b) {
		t.Fatalf("relayOf: %p %p", relayOf(a), relayOf(b))
	}
	called := false
	other := func(ctx context.Context, ev layer.Message) error { called = true; return nil }
	if relayOf(other) != nil || relayOf(nil) != nil || called {
		t.Fatal("relayOf took (or called) a handler that is not a relay")
	}
}
