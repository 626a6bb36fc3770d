package main

import (
	"bytes"
	"context"
	"log/slog"
	"testing"
	"time"

	"ginws.dev/ginws/yjs/ystore"

	"ginws.dev/examples/internal/layerflag"
	"ginws.dev/ginws/redislayer/redistest"
	"ginws.dev/ginws/wstest"
	"ginws.dev/ginws/yjs/redisstore"
)

// redisLayerURL is the -layer value for these tests: Redis DB 6, a prefix of their own.
const redisLayerURL = "redis://127.0.0.1:6379/6?prefix=yjsexample"

// TestRoomSpansProcesses: two app instances, each with its own Redis connection made from the
// same -layer flag (as two processes would run), serve one room. Alice on the first and Bob on
// the second see each other's keystrokes; a client of a neighbouring room does not.
func TestRoomSpansProcesses(t *testing.T) {
	// Not parallel: it empties the Redis prefix yjsexample, under which the other multi-process test
	// keeps its documents.
	redistest.Need(t)
	ctx := ctxT(t)
	log := slog.New(slog.DiscardHandler)
	var apps [2]*wstest.Server
	for i := range apps {
		lay, closeLayer, err := layerflag.Parse(redisLayerURL, log, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if err := closeLayer(); err != nil {
				t.Errorf("closing the layer: %v", err)
			}
		})
		if i == 0 { // only this test's prefix in DB 6, before and after
			if err := lay.Flush(ctx); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				if err := lay.Flush(ctx); err != nil {
					t.Errorf("flushing: %v", err)
				}
			})
		}
		_, apps[i] = startApp(t, Options{Layer: lay})
	}

	alice, _ := join(t, ctx, apps[0], "shared")
	bob, _ := join(t, ctx, apps[1], "shared")
	other, _ := join(t, ctx, apps[1], "shared-not")

	if err := alice.SendBytes(ctx, syncMsg(2, typeA)); err != nil {
		t.Fatal(err)
	}
	if got := receiveSync(t, ctx, bob, 2); !bytes.Equal(got, typeA) {
		t.Fatalf("bob (other process) received %x, alice sent %x", got, typeA)
	}
	if err := bob.SendBytes(ctx, syncMsg(2, typeB)); err != nil {
		t.Fatal(err)
	}
	if got := receiveSync(t, ctx, alice, 2); !bytes.Equal(got, typeB) {
		t.Fatalf("alice (other process) received %x, bob sent %x", got, typeB)
	}
	if err := other.ReceiveNothing(ctx, 200*time.Millisecond); err != nil {
		t.Fatalf("a client of another room: %v", err)
	}
}

// TestDocumentOutlivesProcesses: with -store on Redis, a document typed into one process is
// there for a client of a process started after the first one stopped.
func TestDocumentOutlivesProcesses(t *testing.T) {
	// Not parallel: it shares the Redis prefix yjsexample with TestRoomSpansProcesses.
	redistest.Need(t)
	ctx := ctxT(t)
	const room = "kept"
	const storeURL = "redis://127.0.0.1:6379/6?prefix=yjsexample:doc:"
	newStore := func() ystore.Store {
		store, closeStore, err := parseStore(storeURL)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(closeStore)
		return store
	}
	store := newStore()
	del := func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := store.(*redisstore.Store).Delete(ctx, room); err != nil {
			t.Errorf("deleting the room's log: %v", err)
		}
	}
	del()
	t.Cleanup(del)

	first, ts := startApp(t, Options{Store: store})
	alice, _ := join(t, ctx, ts, room)
	for _, u := range [][]byte{typeA, typeB} {
		if err := alice.SendBytes(ctx, syncMsg(2, u)); err != nil {
			t.Fatal(err)
		}
	}
	// An update is applied before the next frame is read: a round trip makes sure both were.
	if err := alice.SendBytes(ctx, syncMsg(0, []byte{0})); err != nil {
		t.Fatal(err)
	}
	receiveSync(t, ctx, alice, 1)
	if err := first.WS.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if err := first.Yjs.Close(ctx); err != nil { // writes what the room still holds
		t.Fatal(err)
	}

	_, ts = startApp(t, Options{Store: newStore()})
	_, doc := join(t, ctx, ts, room)
	merged := mustHex("01020100040104746578740161840100016200")
	state := mustHex("010101000401047465787402616200")
	if !bytes.Equal(doc, merged) && !bytes.Equal(doc, state) {
		t.Fatalf("the next process's document: %x, want %x or %x", doc, merged, state)
	}
}
