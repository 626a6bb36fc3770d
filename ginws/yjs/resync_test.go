package yjs_test

import (
	"bytes"
	"context"
	"sync/atomic"
	"testing"
	"time"

	"ginws.dev/ginws/yjs/ystore"

	"ginws.dev/ginws/layer"
	"ginws.dev/ginws/yjs"
	"ginws.dev/ginws/yjs/yproto"
	"ginws.dev/ginws/yjs/yupdate"
)

// lossyLayer is a real MemoryLayer that loses group messages of one type while drop is set, as
// a layer does when a receiving process's channel is full.
type lossyLayer struct {
	*layer.Memory
	dropType string
	drop     atomic.Bool
	dropped  atomic.Int32
}

func (l *lossyLayer) GroupSend(ctx context.Context, group string, msg layer.Message) error {
	if l.drop.Load() && msg.Type() == l.dropType {
		l.dropped.Add(1)
		return nil
	}
	return l.Memory.GroupSend(ctx, group, msg)
}

// An update whose layer message was lost reaches the other process at the next resync.
func TestResyncRepairsLostMessages(t *testing.T) {
	t.Parallel()
	lay := &lossyLayer{Memory: layer.NewMemory(layer.MemoryConfig{}), dropType: "yjs.update"}
	defer lay.Close()
	cfg := yjs.Config{ResyncInterval: 100 * time.Millisecond}
	a := newApp(t, lay, cfg)
	b := newApp(t, lay, cfg)
	ca, _ := a.dial(t, "/yjs/lossy")
	cb, _ := b.dial(t, "/yjs/lossy")
	lay.drop.Store(true)
	ca.send(yproto.AppendSyncUpdate(nil, fxHello))
	ca.send(yproto.AppendSyncStep1(nil, fxSVHello)) // a round trip: the update was handled
	ca.next(yproto.MsgSync)
	lay.drop.Store(false)
	if lay.dropped.Load() == 0 {
		t.Fatal("the update was not sent through the layer at all")
	}
	m := cb.next(yproto.MsgSync) // arrives with the next resync
	if m.SyncType != yproto.SyncUpdate || !bytes.Equal(mustSV(t, m.Payload), fxSVHello) {
		t.Fatalf("after resync b's client got type %d, %x", m.SyncType, m.Payload)
	}
}

// A doc_update group-sent by anyone (ypy's send_doc_update, a Django process) reaches the
// room's clients and is stored.
func TestDocUpdateFromTheLayer(t *testing.T) {
	t.Parallel()
	store := ystore.NewMemory()
	a := newApp(t, nil, yjs.Config{Store: store, SaveDelay: -1})
	c, _ := a.dial(t, "/yjs/ypy")
	err := a.ws.Layer().GroupSend(ctxT(t), yjs.GroupName("ypy"), layer.Message{"type": "doc_update", "update": fxHello})
	if err != nil {
		t.Fatal(err)
	}
	if m := c.next(yproto.MsgSync); !bytes.Equal(m.Payload, fxHello) {
		t.Fatalf("client got %x", m.Payload)
	}
	waitFor(t, "the update to be stored", func() bool { return store.Len("ypy") == 1 })
	// A malformed one is dropped, not applied and not relayed.
	err = a.ws.Layer().GroupSend(ctxT(t), yjs.GroupName("ypy"), layer.Message{"type": "doc_update", "update": []byte{9, 9, 9}})
	if err != nil {
		t.Fatal(err)
	}
	c.quiet()
}

func mustSV(t *testing.T, u []byte) []byte {
	t.Helper()
	sv, err := yupdate.StateVector(u)
	if err != nil {
		t.Fatal(err)
	}
	return sv
}

// Updates learned from another process that the other process never stored (it crashed before
// saving — here, its store is simply another one) are written by this process when it unloads
// the room.
func TestUnloadReconcilesUpdatesOthersDidNotStore(t *testing.T) {
	t.Parallel()
	lay := layer.NewMemory(layer.MemoryConfig{})
	defer lay.Close()
	kept := ystore.NewMemory()
	a := newApp(t, lay, yjs.Config{Store: kept, UnloadDelay: -1})
	b := newApp(t, lay, yjs.Config{Store: ystore.NewMemory()}) // b's writes are lost
	ca, _ := a.dial(t, "/yjs/rec")
	cb, _ := b.dial(t, "/yjs/rec")
	cb.send(yproto.AppendSyncUpdate(nil, fxHello))
	if m := ca.next(yproto.MsgSync); !bytes.Equal(m.Payload, fxHello) {
		t.Fatalf("a's client got %x", m.Payload)
	}
	if kept.Len("rec") != 0 {
		t.Fatal("a stored another process's update right away")
	}
	_ = ca.Disconnect(ctxT(t))
	waitFor(t, "a to unload the room", func() bool { return len(a.ys.Rooms()) == 0 })
	log, err := kept.Load(ctxT(t), "rec")
	if err != nil || len(log) != 1 || !bytes.Equal(mustSV(t, log[0]), fxSVHello) {
		t.Fatalf("a's store after unload: %d entries (%v)", len(log), err)
	}
}

// Awareness states nobody renews expire on the server too, so late joiners are not shown clients
// that vanished with another process.
func TestAwarenessExpires(t *testing.T) {
	t.Parallel()
	a := newApp(t, nil, yjs.Config{AwarenessTimeout: 100 * time.Millisecond})
	c, _ := a.dial(t, "/yjs/exp")
	c.send(awarenessMsg(5, 1, `{"user":"gone soon"}`))
	decodeAw(t, c.next(yproto.MsgAwareness))
	waitFor(t, "the state to expire", func() bool {
		l, _ := a.dial(t, "/yjs/exp")
		return l.ReceiveNothing(ctxT(t), 100*time.Millisecond) == nil
	})
}
