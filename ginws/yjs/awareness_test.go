package yjs_test

import (
	"testing"

	"ginws.dev/ginws"
	"ginws.dev/ginws/yjs"
	"ginws.dev/ginws/yjs/yproto"
)

// awarenessOf encodes one awareness message with several entries.
func awarenessOf(entries ...yproto.AwarenessEntry) []byte {
	return yproto.AppendAwareness(nil, yproto.AppendAwarenessUpdate(nil, entries))
}

func state(id, clock uint64, s string) yproto.AwarenessEntry {
	return yproto.AwarenessEntry{ClientID: id, Clock: clock, State: []byte(s)}
}

// joinRoom dials path and reads the awareness states the room sends a joiner (states of them).
func (a *app) joinRoom(t *testing.T, path string, states int) *client {
	t.Helper()
	c, _ := a.dial(t, path)
	if states > 0 {
		if e := decodeAw(t, c.next(yproto.MsgAwareness)); len(e) != states {
			t.Fatalf("joiner got %d states, want %d", len(e), states)
		}
	}
	return c
}

// Only the IDs a connection originates count against MaxClientsPerConn. Re-sending the states
// the room has (what every stock client does with each state it applies) costs nothing, however
// many; publishing new IDs, taking over another connection's ID with a newer clock, and churning
// through IDs (publish, remove, publish another) all count, for the connection's whole life.
func TestAwarenessClaimsPerConnection(t *testing.T) {
	t.Parallel()
	a := newApp(t, nil, yjs.Config{MaxClientsPerConn: 2})
	owners := make([]*client, 3)
	for i := range owners {
		owners[i] = a.joinRoom(t, "/yjs/claims", i)
		owners[i].send(awarenessMsg(uint64(100+i), 3, `{"u":1}`))
		for _, o := range owners[:i+1] {
			decodeAw(t, o.next(yproto.MsgAwareness))
		}
	}

	// A relayer re-sends all three states, repeatedly, and publishes its own two: it stays.
	relayer := a.joinRoom(t, "/yjs/claims", 3)
	all := awarenessOf(state(100, 3, `{"u":1}`), state(101, 3, `{"u":1}`), state(102, 3, `{"u":1}`))
	relayer.send(all)
	relayer.send(all)
	relayer.send(awarenessOf(state(200, 1, `{}`), state(201, 1, `{}`)))
	if e := decodeAw(t, relayer.next(yproto.MsgAwareness)); len(e) != 2 {
		t.Fatalf("relayer's own states relayed as %+v", e)
	}
	relayer.send(all)
	relayer.send(awarenessOf(state(200, 2, `{"moved":1}`))) // renewing its own: no new claim
	decodeAw(t, relayer.next(yproto.MsgAwareness))

	// A third ID of its own is one too many.
	relayer.send(awarenessMsg(202, 1, `{}`))
	if code, _, err := relayer.WaitClosed(ctxT(t)); err != nil || code != ginws.ClosePolicyViolation {
		t.Fatalf("third own ID: closed with %d (%v), want 1008", code, err)
	}
	awarenessFrom(t, owners[0], 201, yproto.AwarenessEntry.IsRemoval) // its states are gone

	// Taking over other connections' IDs with newer clocks counts as claiming them.
	spoofer := a.joinRoom(t, "/yjs/claims", 3)
	spoofer.send(awarenessOf(state(100, 4, `{"u":"me"}`), state(101, 4, `{"u":"me"}`)))
	decodeAw(t, spoofer.next(yproto.MsgAwareness))
	spoofer.send(awarenessOf(state(102, 4, `{"u":"me"}`)))
	if code, _, err := spoofer.WaitClosed(ctxT(t)); err != nil || code != ginws.ClosePolicyViolation {
		t.Fatalf("third taken-over ID: closed with %d (%v), want 1008", code, err)
	}
	awarenessFrom(t, owners[0], 101, yproto.AwarenessEntry.IsRemoval) // the IDs it took over go with it

	// Removing a state does not give its claim back.
	churner := a.joinRoom(t, "/yjs/claims", 1)
	for i, id := range []uint64{300, 301} {
		churner.send(awarenessMsg(id, 1, `{}`))
		churner.send(awarenessMsg(id, 2, `null`))
		for range 2 {
			if e := decodeAw(t, churner.next(yproto.MsgAwareness)); len(e) != 1 || e[0].ClientID != id {
				t.Fatalf("churn %d: %+v", i, e)
			}
		}
	}
	churner.send(awarenessMsg(302, 1, `{}`))
	if code, _, err := churner.WaitClosed(ctxT(t)); err != nil || code != ginws.ClosePolicyViolation {
		t.Fatalf("third churned ID: closed with %d (%v), want 1008", code, err)
	}
}

// The hello — the awareness message a y-websocket client sends right after its sync step 1,
// holding its own state — is answered, to that client alone, by a null state for its ID with the
// room's clock, which makes a y-protocols client re-send its state with the next clock. Peers that
// knew the client before it reconnected ignore its state at the old clock; they take the new one.
func TestHelloIsAskedToRenew(t *testing.T) {
	t.Parallel()
	a := newApp(t, nil, yjs.Config{})
	peer, _ := a.dial(t, "/yjs/hello")
	c := a.joinRoom(t, "/yjs/hello", 0)
	c.send(yproto.AppendSyncStep1(nil, []byte{0}))
	c.send(awarenessMsg(7, 4, `{"u":"c"}`))
	c.next(yproto.MsgSync) // the step 2 answer
	if e := decodeAw(t, c.next(yproto.MsgAwareness)); len(e) != 1 || e[0].Clock != 4 || e[0].IsRemoval() {
		t.Fatalf("echo: %+v", e)
	}
	if e := decodeAw(t, c.next(yproto.MsgAwareness)); len(e) != 1 || e[0].ClientID != 7 || e[0].Clock != 4 || !e[0].IsRemoval() {
		t.Fatalf("renewal request: %+v, want a null state for client 7 at clock 4", e)
	}
	decodeAw(t, peer.next(yproto.MsgAwareness))
	peer.quiet() // the request went to c alone
	// A y-protocols client answers it with its state at the next clock.
	c.send(awarenessMsg(7, 5, `{"u":"c"}`))
	if e := decodeAw(t, peer.next(yproto.MsgAwareness)); len(e) != 1 || e[0].Clock != 5 {
		t.Fatalf("renewed state: %+v", e)
	}
	decodeAw(t, c.next(yproto.MsgAwareness))

	// Later awareness messages are not hellos (they may be relays of other clients' states), nor
	// is one that does not follow the step 1 at once.
	c.send(awarenessMsg(7, 6, `{"u":"c"}`))
	decodeAw(t, c.next(yproto.MsgAwareness))
	c.quiet()
	d := a.joinRoom(t, "/yjs/hello", 1)
	d.send(awarenessMsg(8, 1, `{}`))
	decodeAw(t, d.next(yproto.MsgAwareness))
	d.quiet()

	// A client that comes back finds its removed state's clock in the room: its hello at that
	// clock is not taken, and it is asked to go past it.
	if err := c.Disconnect(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	awarenessFrom(t, peer, 7, func(e yproto.AwarenessEntry) bool { return e.IsRemoval() && e.Clock == 6 })
	back := a.joinRoom(t, "/yjs/hello", 1)
	back.send(yproto.AppendSyncStep1(nil, []byte{0}))
	back.send(awarenessMsg(7, 6, `{"u":"c"}`))
	back.next(yproto.MsgSync)
	if e := decodeAw(t, back.next(yproto.MsgAwareness)); len(e) != 1 || e[0].ClientID != 7 || e[0].Clock != 6 || !e[0].IsRemoval() {
		t.Fatalf("renewal request after coming back: %+v", e)
	}
	peer.quiet()
	back.send(awarenessMsg(7, 7, `{"u":"c"}`))
	if e := decodeAw(t, peer.next(yproto.MsgAwareness)); len(e) != 1 || e[0].Clock != 7 || e[0].IsRemoval() {
		t.Fatalf("state after coming back: %+v", e)
	}
}
