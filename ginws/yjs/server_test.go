package yjs_test

import (
	"bytes"
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"ginws.dev/ginws/yjs/ystore"

	"ginws.dev/ginws"
	"ginws.dev/ginws/layer"
	"ginws.dev/ginws/yjs"
	"ginws.dev/ginws/yjs/yproto"
	"ginws.dev/ginws/yjs/yupdate"
)

// The opening of a y-websocket session: the server's step 1 carries the room's state vector, a
// client's step 1 is answered with the step 2 it lacks (also when that is empty), and a late
// joiner gets the state from the server, not from peers.
func TestHandshakeAndSync(t *testing.T) {
	t.Parallel()
	a := newApp(t, nil, yjs.Config{})
	c1, sv := a.dial(t, "/yjs/notes/2024")
	if !bytes.Equal(sv, []byte{0}) {
		t.Fatalf("state vector of an empty room = %x, want 00", sv)
	}
	c1.quiet() // no awareness states yet: no awareness message
	c1.send(yproto.AppendSyncStep1(nil, []byte{0}))
	m := c1.next(yproto.MsgSync)
	if m.SyncType != yproto.SyncStep2 || !yupdate.IsEmpty(m.Payload) {
		t.Fatalf("answer to step 1 in an empty room: sync type %d payload %x", m.SyncType, m.Payload)
	}
	c1.send(yproto.AppendSyncStep2(nil, fxHello))
	c1.send(yproto.AppendSyncStep1(nil, fxSVHello)) // a round trip: the update was handled
	c1.next(yproto.MsgSync)

	c2, sv := a.dial(t, "/yjs/notes/2024")
	if !bytes.Equal(sv, fxSVHello) {
		t.Fatalf("late joiner's state vector = %x, want %x", sv, fxSVHello)
	}
	c2.send(yproto.AppendSyncStep1(nil, []byte{0}))
	m = c2.next(yproto.MsgSync)
	got, err := yupdate.StateVector(m.Payload)
	if m.SyncType != yproto.SyncStep2 || err != nil || !bytes.Equal(got, fxSVHello) {
		t.Fatalf("late joiner's step 2: type %d, state vector %x (%v)", m.SyncType, got, err)
	}
	// A client that already has everything gets an empty step 2.
	c2.send(yproto.AppendSyncStep1(nil, fxSVHello))
	if m := c2.next(yproto.MsgSync); !yupdate.IsEmpty(m.Payload) {
		t.Fatalf("step 2 for an up-to-date client: %x", m.Payload)
	}
	if rooms := a.ys.Rooms(); len(rooms) != 1 || rooms[0] != "notes/2024" {
		t.Fatalf("Rooms() = %q", rooms)
	}
}

// Updates are relayed, byte for byte, to the other members and not echoed to the sender; rooms
// are separate.
func TestRelay(t *testing.T) {
	t.Parallel()
	a := newApp(t, nil, yjs.Config{})
	c1, _ := a.dial(t, "/yjs/r")
	c2, _ := a.dial(t, "/yjs/r")
	other, _ := a.dial(t, "/yjs/other")
	c1.send(yproto.AppendSyncUpdate(nil, fxHello))
	m := c2.next(yproto.MsgSync)
	if m.SyncType != yproto.SyncUpdate || !bytes.Equal(m.Payload, fxHello) {
		t.Fatalf("relayed: type %d payload %x", m.SyncType, m.Payload)
	}
	c2.send(yproto.AppendSyncUpdate(nil, fxWorld))
	if m := c1.next(yproto.MsgSync); !bytes.Equal(m.Payload, fxWorld) {
		t.Fatalf("relayed back: %x", m.Payload)
	}
	c1.quiet()
	c2.quiet()
	other.quiet()
	doc, err := a.ys.Document(ctxT(t), "r")
	if err != nil {
		t.Fatal(err)
	}
	sv, _ := yupdate.StateVector(doc)
	want, _ := yupdate.StateVector(mustMerge(t, fxHello, fxWorld))
	if !bytes.Equal(sv, want) {
		t.Fatalf("document state vector %x, want %x", sv, want)
	}
}

func mustMerge(t *testing.T, u ...[]byte) []byte {
	t.Helper()
	m, err := yupdate.Merge(u...)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// Awareness is echoed to its sender, relayed to the others, shown to late joiners, answered on
// query, and removed for everybody when its connection ends — with a close frame or without.
func TestAwareness(t *testing.T) {
	t.Parallel()
	a := newApp(t, nil, yjs.Config{})
	c1, _ := a.dial(t, "/yjs/r")
	c2, _ := a.dial(t, "/yjs/r")
	c1.send(awarenessMsg(10, 1, `{"user":"a"}`))
	for _, c := range []*client{c1, c2} {
		m := c.next(yproto.MsgAwareness)
		e, err := yproto.DecodeAwareness(m.Payload)
		if err != nil || len(e) != 1 || e[0].ClientID != 10 || e[0].Clock != 1 || string(e[0].State) != `{"user":"a"}` {
			t.Fatalf("awareness relayed as %+v (%v)", e, err)
		}
	}
	// An older clock changes nothing and is not relayed.
	c1.send(awarenessMsg(10, 0, `{"user":"old"}`))
	c2.quiet()

	// A late joiner gets the states right after step 1; a query gets them too.
	c3, _ := a.dial(t, "/yjs/r")
	if e := decodeAw(t, c3.next(yproto.MsgAwareness)); len(e) != 1 || e[0].ClientID != 10 {
		t.Fatalf("late joiner's awareness: %+v", e)
	}
	c3.send(yproto.AppendQueryAwareness(nil))
	if e := decodeAw(t, c3.next(yproto.MsgAwareness)); len(e) != 1 || e[0].ClientID != 10 {
		t.Fatalf("query answer: %+v", e)
	}

	// c1 closes: its client 10 is removed with its own clock (as y-protocols removes a peer), not
	// a clock the client never reached, which peers would keep and hold against its next renewal.
	if err := c1.Disconnect(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	for _, c := range []*client{c2, c3} {
		e := decodeAw(t, c.next(yproto.MsgAwareness))
		if len(e) != 1 || e[0].ClientID != 10 || e[0].Clock != 1 || !e[0].IsRemoval() {
			t.Fatalf("removal after close: %+v", e)
		}
	}

	// c2's client vanishes without a close frame (killed process, dead network).
	c2.send(awarenessMsg(20, 5, `{"user":"b"}`))
	decodeAw(t, c2.next(yproto.MsgAwareness))
	decodeAw(t, c3.next(yproto.MsgAwareness))
	c2.Abort()
	e := decodeAw(t, c3.next(yproto.MsgAwareness))
	if len(e) != 1 || e[0].ClientID != 20 || e[0].Clock != 5 || !e[0].IsRemoval() {
		t.Fatalf("removal after a dropped connection: %+v", e)
	}
	// A client that removes its own state is not removed twice.
	c3.send(awarenessMsg(30, 1, `{}`))
	decodeAw(t, c3.next(yproto.MsgAwareness))
	c3.send(awarenessMsg(30, 2, `null`))
	decodeAw(t, c3.next(yproto.MsgAwareness))
	c4, _ := a.dial(t, "/yjs/r")
	c4.quiet() // no live state left: no awareness message at all
}

func decodeAw(t *testing.T, m yproto.Message) []yproto.AwarenessEntry {
	t.Helper()
	e, err := yproto.DecodeAwareness(m.Payload)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// A read-only client receives everything; its changes are refused with the permission-denied
// message and never applied or relayed. Its awareness is relayed.
func TestReadOnly(t *testing.T) {
	t.Parallel()
	a := newApp(t, nil, yjs.Config{})
	w, _ := a.dial(t, "/yjs/r")
	ro, _ := a.dial(t, "/yjs/r?view=1")
	ro.send(yproto.AppendSyncStep2(nil, []byte{0, 0})) // the empty step 2 every client sends: no denial
	ro.send(yproto.AppendSyncUpdate(nil, fxHello))
	m := ro.next(yproto.MsgAuth)
	if m.Reason == "" {
		t.Fatal("permission denied without a reason")
	}
	ro.send(yproto.AppendSyncStep2(nil, fxWorld))
	ro.next(yproto.MsgAuth)
	w.quiet()
	doc, err := a.ys.Document(ctxT(t), "r")
	if err != nil || !yupdate.IsEmpty(doc) {
		t.Fatalf("the document changed after read-only updates: %x (%v)", doc, err)
	}
	w.send(yproto.AppendSyncUpdate(nil, fxHello))
	if m := ro.next(yproto.MsgSync); !bytes.Equal(m.Payload, fxHello) {
		t.Fatalf("read-only client got %x", m.Payload)
	}
	ro.send(awarenessMsg(7, 1, `{"viewer":true}`))
	decodeAw(t, w.next(yproto.MsgAwareness))
	if got := a.ys.Stats().Refused; got != 2 {
		t.Fatalf("Stats().Refused = %d, want 2", got)
	}
}

// Bad input closes the connection with a code that says why; the server goes on.
func TestBadInput(t *testing.T) {
	t.Parallel()
	a := newApp(t, nil, yjs.Config{MaxDocumentSize: 40})
	cases := []struct {
		name string
		send func(c *client)
		code int
	}{
		{"text frame", func(c *client) { _ = c.SendText(ctxT(t), "hello") }, ginws.CloseUnsupportedData},
		{"truncated message", func(c *client) { c.send([]byte{0x00}) }, ginws.CloseInvalidPayload},
		{"unknown message type", func(c *client) { c.send([]byte{0x07}) }, ginws.CloseUnsupportedData},
		{"malformed update", func(c *client) { c.send(yproto.AppendSyncUpdate(nil, []byte{0x05, 0xff, 0xff})) }, ginws.CloseInvalidPayload},
		{"malformed state vector", func(c *client) { c.send(yproto.AppendSyncStep1(nil, []byte{0x03, 0x01})) }, ginws.CloseInvalidPayload},
		{"malformed awareness", func(c *client) { c.send(yproto.AppendAwareness(nil, []byte{0x01, 0x01})) }, ginws.CloseInvalidPayload},
		{"document too large", func(c *client) {
			c.send(yproto.AppendSyncUpdate(nil, fxHello))
			c.send(yproto.AppendSyncUpdate(nil, fxWorld))
			c.send(yproto.AppendSyncUpdate(nil, fxMapSet))
		}, yjs.CloseDocumentTooLarge},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, _ := a.dial(t, "/yjs/bad-"+strings.ReplaceAll(tc.name, " ", "-"))
			tc.send(c)
			code, _, err := c.WaitClosed(ctxT(t))
			if err != nil || code != tc.code {
				t.Fatalf("closed with %d (%v), want %d", code, err, tc.code)
			}
		})
	}
	// Refused handshakes.
	for path, status := range map[string]int{"/yjs/r?deny=1": 403, "/yjs/": 404} {
		res, err := a.http.Communicator(path).Connect(ctxT(t))
		if err != nil || res.Accepted || res.Status != status {
			t.Fatalf("%s: accepted=%v status=%d (%v), want %d", path, res.Accepted, res.Status, err, status)
		}
	}
	// The server still serves.
	c, _ := a.dial(t, "/yjs/after")
	c.send(yproto.AppendSyncStep1(nil, []byte{0}))
	c.next(yproto.MsgSync)
}

// A room that empties is saved, unloaded, and loaded again from the store for the next client.
func TestPersistenceAndReload(t *testing.T) {
	t.Parallel()
	store := ystore.NewMemory()
	a := newApp(t, nil, yjs.Config{Store: store, UnloadDelay: -1, CompactAfter: 2})
	c, _ := a.dial(t, "/yjs/kept")
	for _, u := range [][]byte{fxHello, fxWorld, fxMapSet} {
		c.send(yproto.AppendSyncUpdate(nil, u))
	}
	c.send(yproto.AppendSyncStep1(nil, []byte{0})) // a round trip: the updates were handled
	c.next(yproto.MsgSync)
	if err := c.Disconnect(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the room to unload", func() bool { return len(a.ys.Rooms()) == 0 })
	if n := store.Len("kept"); n == 0 || n > 2 {
		t.Fatalf("stored log has %d entries, want 1 or 2 (saved, compacted after 2)", n)
	}
	want, _ := yupdate.StateVector(mustMerge(t, fxHello, fxWorld, fxMapSet))
	doc, err := a.ys.Document(ctxT(t), "kept")
	if err != nil {
		t.Fatal(err)
	}
	if sv, _ := yupdate.StateVector(doc); !bytes.Equal(sv, want) {
		t.Fatalf("stored document's state vector %x, want %x", sv, want)
	}
	c2, sv := a.dial(t, "/yjs/kept")
	if !bytes.Equal(sv, want) {
		t.Fatalf("reloaded room's state vector %x, want %x", sv, want)
	}
	c2.send(yproto.AppendSyncUpdate(nil, fxDeleteHello))
	c2.send(yproto.AppendSyncStep1(nil, want))
	c2.next(yproto.MsgSync)
	if st := a.ys.Stats(); st.Loads != 2 || st.Unloads != 1 {
		t.Fatalf("stats after a reload: %+v", st)
	}
}

// InitialDoc seeds an unknown room; the seed is stored only with a change (see
// TestInitialDocStoredOnlyWithAChange).
func TestInitialDoc(t *testing.T) {
	t.Parallel()
	var calls atomic.Int32
	store := ystore.NewMemory()
	a := newApp(t, nil, yjs.Config{Store: store, UnloadDelay: -1, InitialDoc: func(ctx context.Context, room string) ([]byte, error) {
		calls.Add(1)
		return fxHello, nil
	}})
	c, sv := a.dial(t, "/yjs/seeded")
	if !bytes.Equal(sv, fxSVHello) {
		t.Fatalf("seeded room's state vector %x", sv)
	}
	_ = c.Disconnect(ctxT(t))
	waitFor(t, "the room to unload", func() bool { return len(a.ys.Rooms()) == 0 })
	if _, sv := a.dial(t, "/yjs/seeded"); !bytes.Equal(sv, fxSVHello) {
		t.Fatalf("reloaded seeded room's state vector %x", sv)
	}
	// Nothing changed: the seed was not stored, and the reload seeded the room again.
	if calls.Load() != 2 || store.Len("seeded") != 0 {
		t.Fatalf("InitialDoc called %d times, %d stored entries; want 2 and 0", calls.Load(), store.Len("seeded"))
	}
}

// Server.Update reaches the room's clients (ypy's send_doc_update), and is stored for a room
// that is not loaded.
func TestServerUpdate(t *testing.T) {
	t.Parallel()
	var changes atomic.Int32
	a := newApp(t, nil, yjs.Config{OnChange: func(room string, u []byte) { changes.Add(1) }})
	c, _ := a.dial(t, "/yjs/r")
	if err := a.ys.Update(ctxT(t), "r", fxHello); err != nil {
		t.Fatal(err)
	}
	if m := c.next(yproto.MsgSync); !bytes.Equal(m.Payload, fxHello) {
		t.Fatalf("client got %x", m.Payload)
	}
	if err := a.ys.Update(ctxT(t), "elsewhere", fxWorld); err != nil {
		t.Fatal(err)
	}
	doc, err := a.ys.Document(ctxT(t), "elsewhere")
	if err != nil || !bytes.Equal(doc, fxWorld) {
		t.Fatalf("stored update: %x (%v)", doc, err)
	}
	if err := a.ys.Update(ctxT(t), "r", []byte{1, 2, 3}); err == nil {
		t.Fatal("a malformed update was accepted")
	}
	waitFor(t, "OnChange", func() bool { return changes.Load() == 1 })
}

// Two processes on one channel layer share rooms: updates and awareness cross, a room loaded
// later in the second process gets the first one's state through the layer even with separate
// stores, and a client's departure is seen on the other side.
func TestTwoServersConverge(t *testing.T) {
	t.Parallel()
	lay := layer.NewMemory(layer.MemoryConfig{})
	defer lay.Close()
	a := newApp(t, lay, yjs.Config{})
	b := newApp(t, lay, yjs.Config{})
	ca, _ := a.dial(t, "/yjs/shared")
	ca.send(yproto.AppendSyncUpdate(nil, fxHello))
	ca.send(awarenessMsg(10, 1, `{"user":"a"}`))
	decodeAw(t, ca.next(yproto.MsgAwareness))

	// b's room loads with an empty store of its own, then learns a's state from a.
	cb, _ := b.dial(t, "/yjs/shared")
	waitFor(t, "the second process to learn the document", func() bool {
		doc, err := b.ys.Document(context.Background(), "shared")
		sv, _ := yupdate.StateVector(doc)
		return err == nil && bytes.Equal(sv, fxSVHello)
	})
	cb.send(yproto.AppendSyncUpdate(nil, fxWorld))
	if m := ca.next(yproto.MsgSync); !bytes.Equal(m.Payload, fxWorld) {
		t.Fatalf("a got %x", m.Payload)
	}
	cb.send(awarenessMsg(20, 1, `{"user":"b"}`))
	awarenessFrom(t, ca, 20, func(e yproto.AwarenessEntry) bool { return e.Clock == 1 && !e.IsRemoval() })
	if err := ca.Disconnect(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	awarenessFrom(t, cb, 10, yproto.AwarenessEntry.IsRemoval) // b sees a's client leave
	want, _ := yupdate.StateVector(mustMerge(t, fxHello, fxWorld))
	doc, _ := b.ys.Document(ctxT(t), "shared")
	if sv, _ := yupdate.StateVector(doc); !bytes.Equal(sv, want) {
		t.Fatalf("b's document: state vector %x, want %x", sv, want)
	}
}

// awarenessFrom skips messages until an awareness entry of clientID for which ok holds arrives.
func awarenessFrom(t *testing.T, c *client, clientID uint64, ok func(yproto.AwarenessEntry) bool) yproto.AwarenessEntry {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		b, err := c.ReceiveBytes(ctxT(t))
		if err != nil {
			t.Fatal(err)
		}
		m, err := yproto.Decode(b)
		if err != nil || m.Type != yproto.MsgAwareness {
			continue
		}
		for _, e := range decodeAw(t, m) {
			if e.ClientID == clientID && ok(e) {
				return e
			}
		}
	}
	t.Fatalf("no awareness entry for client %d", clientID)
	return yproto.AwarenessEntry{}
}

// A client that comes back within UnloadDelay (a page reload) finds the room still loaded.
func TestReloadWithinUnloadDelay(t *testing.T) {
	t.Parallel()
	a := newApp(t, nil, yjs.Config{UnloadDelay: time.Hour})
	c, _ := a.dial(t, "/yjs/reload")
	c.send(yproto.AppendSyncUpdate(nil, fxHello))
	_ = c.Disconnect(ctxT(t))
	waitFor(t, "the disconnect to be handled", func() bool { return a.ws.Stats().Disconnected == 1 })
	if _, sv := a.dial(t, "/yjs/reload"); !bytes.Equal(sv, fxSVHello) {
		t.Fatalf("state vector after a reload: %x", sv)
	}
	if st := a.ys.Stats(); st.Loads != 1 || st.Unloads != 0 {
		t.Fatalf("a reload within UnloadDelay reloaded the room: %+v", st)
	}
}

// Close saves what was not saved yet, even with a long SaveDelay and clients still connected,
// and later handshakes are refused with 503.
func TestCloseSavesPendingUpdates(t *testing.T) {
	t.Parallel()
	store := ystore.NewMemory()
	a := newApp(t, nil, yjs.Config{Store: store, SaveDelay: time.Hour})
	c, _ := a.dial(t, "/yjs/pending")
	c.send(yproto.AppendSyncUpdate(nil, fxHello))
	c.send(yproto.AppendSyncStep1(nil, fxSVHello))
	c.next(yproto.MsgSync)
	if store.Len("pending") != 0 {
		t.Fatal("saved before SaveDelay")
	}
	if err := a.ys.Close(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	if store.Len("pending") != 1 {
		t.Fatalf("after Close the store holds %d entries, want 1", store.Len("pending"))
	}
	// The open connection is closed with 1001 at its next message.
	c.send(yproto.AppendSyncUpdate(nil, fxWorld))
	if code, _, err := c.WaitClosed(ctxT(t)); err != nil || code != ginws.CloseGoingAway {
		t.Fatalf("closed with %d (%v)", code, err)
	}
	res, err := a.http.Communicator("/yjs/pending").Connect(ctxT(t))
	if err != nil || res.Status != 503 {
		t.Fatalf("handshake after Close: %+v (%v)", res, err)
	}
}
