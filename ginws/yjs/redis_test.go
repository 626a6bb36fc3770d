package yjs_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/redis/rueidis"

	"ginws.dev/ginws/redislayer"
	"ginws.dev/ginws/redislayer/redistest"
	"ginws.dev/ginws/yjs"
	"ginws.dev/ginws/yjs/redisstore"
)

// The yjs tests use Redis DB 5.
const redisURL = "redis://127.0.0.1:6379/5"

// redisProcess is what one process of a multi-process deployment holds: its own channel layer
// connection and store client, on a Redis shared with the others (prefix names the deployment).
type redisProcess struct {
	layer *redislayer.Layer
	store *redisstore.Store
}

func newRedisProcess(t *testing.T, prefix string) redisProcess {
	t.Helper()
	redistest.Need(t)
	lay, err := redislayer.New(redislayer.Config{Hosts: []string{redisURL}, Prefix: "asgi" + prefix})
	if err != nil {
		t.Fatal(err)
	}
	opt, err := rueidis.ParseURL(redisURL)
	if err != nil {
		t.Fatal(err)
	}
	opt.DisableCache = true
	client, err := rueidis.NewClient(opt)
	if err != nil {
		t.Fatal(err)
	}
	store := redisstore.New(client, "ginwstest:yjs:"+prefix+":")
	t.Cleanup(func() {
		// Runs after the apps' cleanups (registered later): the rooms are saved by then.
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := lay.Flush(ctx); err != nil {
			t.Errorf("flush: %v", err)
		}
		_ = lay.Close()
		keys, err := client.Do(ctx, client.B().Keys().Pattern("ginwstest:yjs:"+prefix+":*").Build()).AsStrSlice()
		if err == nil && len(keys) > 0 {
			_ = client.Do(ctx, client.B().Del().Key(keys...).Build()).Error()
		}
		client.Close()
	})
	return redisProcess{layer: lay, store: store}
}

func redisPrefix() string { return fmt.Sprintf("%08x", rand.Uint32()) }

// Two processes on the Redis channel layer and the Redis store: real y-websocket clients, one on
// each, converge and see each other's awareness and departures.
func TestRedisInteropCrossProcess(t *testing.T) {
	t.Parallel()
	prefix := redisPrefix()
	p1, p2 := newRedisProcess(t, prefix), newRedisProcess(t, prefix)
	a := newApp(t, p1.layer, yjs.Config{Store: p1.store})
	b := newApp(t, p2.layer, yjs.Config{Store: p2.store})
	urls := []string{a.url(), b.url()}
	var conv struct{ A, B jsState }
	runDriver(t, "converge", map[string]any{"urls": urls, "room": "redis/1"}, &conv)
	assertConverged(t, conv.A, conv.B)
	var aw struct {
		ASeesBob, BSeesAlice bool
		VictimRemovedBy      string
	}
	runDriver(t, "awareness", map[string]any{"urls": urls, "room": "redis/2"}, &aw)
	if !aw.ASeesBob || !aw.BSeesAlice || aw.VictimRemovedBy != "server" {
		t.Fatalf("cross-process awareness over Redis: %+v", aw)
	}
}

// A document written through one process is read back through another after the first unloaded
// the room: the Redis store carries it.
func TestRedisStorePersistsAcrossProcesses(t *testing.T) {
	t.Parallel()
	prefix := redisPrefix()
	p1, p2 := newRedisProcess(t, prefix), newRedisProcess(t, prefix)
	a := newApp(t, p1.layer, yjs.Config{Store: p1.store, UnloadDelay: -1, SaveDelay: 20 * time.Millisecond, CompactAfter: 2})
	b := newApp(t, p2.layer, yjs.Config{Store: p2.store})
	for i, text := range []string{"one", "two", "three"} {
		var w jsState
		runDriver(t, "write", map[string]any{"url": a.url(), "room": "stored", "text": text}, &w)
		waitFor(t, fmt.Sprintf("the room to unload after write %d", i+1), func() bool { return len(a.ys.Rooms()) == 0 })
	}
	log, err := p2.store.Load(ctxT(t), "stored")
	if err != nil || len(log) == 0 || len(log) > 2 {
		t.Fatalf("stored log: %d entries (%v), want 1 or 2 after compaction", len(log), err)
	}
	var r jsState
	runDriver(t, "read", map[string]any{"url": b.url(), "room": "stored"}, &r)
	if r.Text != "onetwothree" || r.Map != `{"one":3,"three":5,"two":3}` {
		t.Fatalf("read through the other process: %+v", r)
	}
}
