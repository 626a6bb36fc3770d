package yjs_test

import (
	"bytes"
	"strings"
	"testing"

	"ginws.dev/ginws"
	"ginws.dev/ginws/yjs"
	"ginws.dev/ginws/yjs/yproto"
	"ginws.dev/ginws/yjs/yupdate"
)

// The reviewer's poison: client ID 2^64-1, which Yjs cannot read. It closes its sender with
// 1007, reaches nobody, and leaves the room empty; so does awareness with such an ID or clock.
func TestIntegersBeyondJavaScriptRefused(t *testing.T) {
	t.Parallel()
	a := newApp(t, nil, yjs.Config{})
	other, _ := a.dial(t, "/yjs/poison")
	poison := unhex("0101ffffffffffffffffff01000401017401780" + "0")
	for name, msg := range map[string][]byte{
		"update":          yproto.AppendSyncUpdate(nil, poison),
		"step 2":          yproto.AppendSyncStep2(nil, poison),
		"awareness id":    awarenessMsg(1<<64-1, 1, `{}`),
		"awareness clock": awarenessMsg(7, 1<<53, `{}`),
		"state vector":    yproto.AppendSyncStep1(nil, unhex("01ffffffffffffffffff0100")),
	} {
		c, _ := a.dial(t, "/yjs/poison")
		c.send(msg)
		if code, _, err := c.WaitClosed(ctxT(t)); err != nil || code != ginws.CloseInvalidPayload {
			t.Fatalf("%s: closed with %d (%v), want 1007", name, code, err)
		}
	}
	other.quiet()
	if doc, err := a.ys.Document(ctxT(t), "poison"); err != nil || !yupdate.IsEmpty(doc) {
		t.Fatalf("document after poison: %x, %v", doc, err)
	}
}

// A removal announced for a client whose clock is 2^53-1 keeps that clock, as every removal
// does; y-protocols takes a null state with an equal clock as a removal. A hello at that clock is
// not asked to renew: the next clock would be unreadable for JavaScript peers.
func TestAwarenessClockSaturates(t *testing.T) {
	t.Parallel()
	a := newApp(t, nil, yjs.Config{})
	c1, _ := a.dial(t, "/yjs/clock")
	c2, _ := a.dial(t, "/yjs/clock")
	c1.send(yproto.AppendSyncStep1(nil, []byte{0}))
	c1.send(awarenessMsg(5, 1<<53-1, `{"u":1}`))
	c1.next(yproto.MsgSync)
	decodeAw(t, c1.next(yproto.MsgAwareness)) // the echo, and nothing more
	c1.quiet()
	decodeAw(t, c2.next(yproto.MsgAwareness))
	if err := c1.Disconnect(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	e := decodeAw(t, c2.next(yproto.MsgAwareness))
	if len(e) != 1 || e[0].ClientID != 5 || e[0].Clock != 1<<53-1 || !e[0].IsRemoval() {
		t.Fatalf("removal: %+v", e)
	}
}

// An awareness state over MaxAwarenessStateSize, or one that would take the room's states past
// MaxAwarenessTotalSize, is ignored — not relayed, not shown to joiners — and its connection
// stays open.
func TestAwarenessSizeLimits(t *testing.T) {
	t.Parallel()
	a := newApp(t, nil, yjs.Config{MaxAwarenessStateSize: 100, MaxAwarenessTotalSize: 250})
	c1, _ := a.dial(t, "/yjs/aw")
	c2, _ := a.dial(t, "/yjs/aw")
	state := func(n int) string { return `"` + strings.Repeat("x", n-2) + `"` } // n bytes of JSON

	c1.send(awarenessMsg(1, 1, state(101)))
	c2.quiet()
	c1.send(awarenessMsg(1, 2, state(90)))
	c1.send(awarenessMsg(2, 1, state(90)))
	for _, id := range []uint64{1, 2} {
		if e := decodeAw(t, c2.next(yproto.MsgAwareness)); len(e) != 1 || e[0].ClientID != id {
			t.Fatalf("state %d relayed as %+v", id, e)
		}
	}
	c1.send(awarenessMsg(3, 1, state(90))) // 270 bytes in the room: over the total
	c2.quiet()
	c1.send(awarenessMsg(1, 3, state(10))) // shrinking a state is fine...
	decodeAw(t, c2.next(yproto.MsgAwareness))
	c1.send(awarenessMsg(3, 2, state(90))) // ...and makes room: 190 bytes
	decodeAw(t, c2.next(yproto.MsgAwareness))
	c3, _ := a.dial(t, "/yjs/aw")
	if e := decodeAw(t, c3.next(yproto.MsgAwareness)); len(e) != 3 {
		t.Fatalf("joiner sees %d states, want 3", len(e))
	}
	// A multi-entry update: the oversized entry goes, the others are applied.
	c1.send(yproto.AppendAwareness(nil, yproto.AppendAwarenessUpdate(nil, []yproto.AwarenessEntry{
		{ClientID: 2, Clock: 2, State: []byte(state(500))},
		{ClientID: 1, Clock: 4, State: []byte(`{}`)},
	})))
	if e := decodeAw(t, c2.next(yproto.MsgAwareness)); len(e) != 1 || e[0].ClientID != 1 {
		t.Fatalf("relayed %+v, want only client 1", e)
	}
}

// A client reconnecting after deletions sends a step 2 with its whole delete set: nothing in it
// is new, so nothing is applied, counted or relayed, and a read-only client is not told
// "permission denied". A step 2 with something new is cut down to that.
func TestStep2WithNothingNewIsDropped(t *testing.T) {
	t.Parallel()
	a := newApp(t, nil, yjs.Config{})
	w, _ := a.dial(t, "/yjs/re")
	obs, _ := a.dial(t, "/yjs/re")
	for _, u := range [][]byte{fxHello, fxWorld, fxDeleteHello} {
		w.send(yproto.AppendSyncUpdate(nil, u))
		obs.next(yproto.MsgSync)
	}
	full := mustMerge(t, fxHello, fxWorld, fxDeleteHello)
	before := a.ys.Stats()

	again, _ := a.dial(t, "/yjs/re")
	again.send(yproto.AppendSyncStep2(nil, full))
	viewer, _ := a.dial(t, "/yjs/re?view=1")
	viewer.send(yproto.AppendSyncStep2(nil, full))
	viewer.send(yproto.AppendSyncStep2(nil, fxDeleteHello))
	viewer.quiet() // no permission-denied
	obs.quiet()
	w.quiet()
	if after := a.ys.Stats(); after.Applied != before.Applied || after.Refused != before.Refused {
		t.Fatalf("stats moved: %+v -> %+v", before, after)
	}

	// The same step 2 plus one new change relays only the change.
	again.send(yproto.AppendSyncStep2(nil, mustMerge(t, full, fxMapSet)))
	if m := obs.next(yproto.MsgSync); !bytes.Equal(m.Payload, fxMapSet) {
		t.Fatalf("relayed %x, want only the new change %x", m.Payload, fxMapSet)
	}
	viewer.next(yproto.MsgSync)
	// A read-only client's step 2 with something new is still refused.
	viewer.send(yproto.AppendSyncStep2(nil, mustMerge(t, full, unhex("010103000401017801790"+"0"))))
	viewer.next(yproto.MsgAuth)
	obs.quiet()
}

// Updates that repeat each other count once their tail is merged: the document limit is checked
// again after a merge before the sender is closed.
func TestDocumentLimitFoldsTail(t *testing.T) {
	t.Parallel()
	a := newApp(t, nil, yjs.Config{MaxDocumentSize: 40})
	c, _ := a.dial(t, "/yjs/fold")
	for range 4 {
		c.send(yproto.AppendSyncUpdate(nil, fxHello)) // 15 bytes, 4 times
	}
	c.send(yproto.AppendSyncStep1(nil, []byte{0}))
	if m := c.next(yproto.MsgSync); m.SyncType != yproto.SyncStep2 {
		t.Fatalf("got sync type %d, want the step 2 answer (the connection is open)", m.SyncType)
	}
	c.send(yproto.AppendSyncUpdate(nil, fxWorld))
	c.send(yproto.AppendSyncUpdate(nil, fxMapSet))
	if code, _, err := c.WaitClosed(ctxT(t)); err != nil || code != yjs.CloseDocumentTooLarge {
		t.Fatalf("closed with %d (%v), want %d", code, err, yjs.CloseDocumentTooLarge)
	}
}

// An update too large closes with a code y-websocket does not reconnect after (44xx): one over
// MaxUpdateSize, and a frame over the read limit, which the ginws runtime closes before yjs reads
// it — with anything else y-websocket would reconnect and resend it forever.
func TestTooLargeIsFinal(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		msg  []byte
	}{
		{"update over MaxUpdateSize", yproto.AppendSyncUpdate(nil, fxHello)},
		{"frame over the read limit", yproto.AppendSyncUpdate(nil, make([]byte, 4096))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := newApp(t, nil, yjs.Config{MaxUpdateSize: 10})
			c, _ := a.dial(t, "/yjs/big")
			_ = c.SendBytes(ctxT(t), tc.msg) // may fail once the server closed mid-frame
			if code, _, err := c.WaitClosed(ctxT(t)); err != nil || code != yjs.CloseUpdateTooLarge || code < 4400 || code > 4499 {
				t.Fatalf("closed with %d (%v), want %d", code, err, yjs.CloseUpdateTooLarge)
			}
		})
	}
}
