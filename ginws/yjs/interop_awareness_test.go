package yjs_test

import (
	"testing"

	"ginws.dev/ginws/yjs"
)

// Fifty stock y-websocket clients in one room. Each joiner re-sends the states of everybody
// already there (a stock client relays every remote awareness change it applies): relays are not
// claims, so nobody is closed for "too many awareness clients", and everybody sees everybody.
func TestInteropCrowdAwareness(t *testing.T) {
	const n = 50
	a := newApp(t, nil, yjs.Config{})
	var res struct {
		Seen   []int
		Closes []struct {
			Client, Code int
			Reason       string
		}
	}
	runDriver(t, "crowd", map[string]any{"url": a.url(), "room": "crowd", "n": n}, &res)
	if len(res.Closes) > 0 {
		t.Errorf("%d closes, want none: %+v", len(res.Closes), res.Closes)
	}
	if len(res.Seen) != n {
		t.Fatalf("%d clients reported, want %d", len(res.Seen), n)
	}
	for i, seen := range res.Seen {
		if seen != n {
			t.Errorf("client %d sees %d users, want %d (all: %v)", i, seen, n, res.Seen)
			break
		}
	}
}
