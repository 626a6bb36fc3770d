package layertest

import (
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
	"time"

	"ginws.dev/ginws/layer"
)

// PairFactory makes, for one presence scenario, two layers that share one backend and stand for
// two processes: two Redis layers on the same database and prefix, say. A layer of one process
// only (layer.Memory) returns the same layer twice; the scenario in which a process dies is then
// skipped. Both must implement layer.Presence, and io.Closer for that scenario. Release them with
// t.Cleanup.
type PairFactory func(t *testing.T, cfg Config) (a, b layer.Layer)

// RunPresence runs the presence scenarios (layer.Presence) as subtests of t: one entry per user
// with its connection count, info, join and leave events once per user (not per connection) on
// every process, a dead process's connections leaving within Config.PresenceTTL, and no event
// kept in a history (the factory passes Config.History on to the layers).
func RunPresence(t *testing.T, newPair PairFactory) {
	tests := []struct {
		name string
		fn   func(*testing.T, PairFactory)
	}{
		{"PresenceList", testPresenceList},
		{"PresenceEvents", testPresenceEvents},
		{"PresenceTwoProcesses", testPresenceTwoProcesses},
		{"PresenceProcessDies", testPresenceProcessDies},
		{"PresenceBadInput", testPresenceBadInput},
		{"PresenceEventsNotKept", testPresenceEventsNotKept},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, newPair) })
	}
}

func presence(t *testing.T, l layer.Layer) layer.Presence {
	t.Helper()
	p, ok := l.(layer.Presence)
	if !ok {
		t.Fatalf("%T does not implement layer.Presence", l)
	}
	return p
}

// newChannels returns n process-local channel names of l.
func newChannels(t *testing.T, l layer.Layer, n int) []string {
	t.Helper()
	out := make([]string, n)
	for i := range out {
		ch, err := l.NewChannel(ctx(t), "presence")
		if err != nil {
			t.Fatal(err)
		}
		out[i] = ch
	}
	return out
}

func track(t *testing.T, l layer.Layer, group, channel, user string, info map[string]any) {
	t.Helper()
	if err := presence(t, l).PresenceAdd(ctx(t), group, channel, layer.PresenceInfo{User: user, Info: info}); err != nil {
		t.Fatalf("PresenceAdd(%q, %q, %q): %v", group, channel, user, err)
	}
}

func untrack(t *testing.T, l layer.Layer, group, channel string) {
	t.Helper()
	if err := presence(t, l).PresenceDiscard(ctx(t), group, channel); err != nil {
		t.Fatalf("PresenceDiscard(%q, %q): %v", group, channel, err)
	}
}

// wantPresence waits up to wait for the list of group on l to be want (users and counts).
func wantPresence(t *testing.T, l layer.Layer, group string, want map[string]int) []layer.PresenceEntry {
	t.Helper()
	deadline := time.Now().Add(wait)
	for {
		list, err := presence(t, l).PresenceList(ctx(t), group)
		if err != nil {
			t.Fatalf("PresenceList(%q): %v", group, err)
		}
		got := make(map[string]int, len(list))
		sorted := true
		for i, e := range list {
			got[e.User] = e.Connections
			if i > 0 && list[i-1].User >= e.User {
				sorted = false
			}
		}
		users, conns, err := presence(t, l).PresenceCount(ctx(t), group)
		if err != nil {
			t.Fatalf("PresenceCount(%q): %v", group, err)
		}
		total := 0
		for _, n := range want {
			total += n
		}
		if reflect.DeepEqual(got, want) && sorted && users == len(want) && conns == total {
			return list
		}
		if time.Now().After(deadline) {
			t.Fatalf("presence of %q = %v (sorted %v, count %d users, %d connections), want %v", group, list, sorted, users, conns, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// wantEvent receives the next message of channel and checks it is the presence event typ of user.
func wantEvent(t *testing.T, l layer.Layer, channel, group, typ, user string) layer.Message {
	t.Helper()
	m := mustReceive(t, l, channel)
	wantType(t, m, typ)
	if u, _ := m.Str("user"); u != user {
		t.Fatalf("%s event for user %q, want %q (%v)", typ, u, user, m)
	}
	if g, _ := m.Str("group"); g != group {
		t.Fatalf("%s event for group %q, want %q (%v)", typ, g, group, m)
	}
	return m
}

func testPresenceList(t *testing.T, newPair PairFactory) {
	l, _ := newPair(t, Config{})
	group := unique(t, "presence-list")
	chs := newChannels(t, l, 3)
	wantPresence(t, l, group, map[string]int{})
	track(t, l, group, chs[0], "alice", map[string]any{"name": "Alice", "tags": []any{"a", "b"}})
	track(t, l, group, chs[1], "alice", map[string]any{"name": "Alice"})
	track(t, l, group, chs[2], "bob", nil)
	track(t, l, group, chs[2], "bob", nil) // again: still one connection
	list := wantPresence(t, l, group, map[string]int{"alice": 2, "bob": 1})
	if name, _ := layer.Message(list[0].Info).Str("name"); name != "Alice" {
		t.Fatalf("alice's info = %v", list[0].Info)
	}
	untrack(t, l, group, chs[0])
	wantPresence(t, l, group, map[string]int{"alice": 1, "bob": 1})
	untrack(t, l, group, chs[0]) // twice: not an error
	untrack(t, l, group, chs[1])
	untrack(t, l, group, chs[2])
	wantPresence(t, l, group, map[string]int{})
}

func testPresenceEvents(t *testing.T, newPair PairFactory) {
	l, _ := newPair(t, Config{})
	group := unique(t, "presence-events")
	chs := newChannels(t, l, 3)
	watcher := chs[2]
	if err := l.GroupAdd(ctx(t), layer.PresenceGroup(group), watcher); err != nil {
		t.Fatal(err)
	}
	track(t, l, group, chs[0], "carol", map[string]any{"name": "Carol"})
	m := wantEvent(t, l, watcher, group, layer.PresenceJoin, "carol")
	if info, _ := m.Map("info"); info == nil || info["name"] != "Carol" {
		t.Fatalf("join event info = %v", m)
	}
	track(t, l, group, chs[1], "carol", nil) // a second tab: no event
	untrack(t, l, group, chs[0])             // one of two left: no event
	untrack(t, l, group, chs[1])
	wantEvent(t, l, watcher, group, layer.PresenceLeave, "carol")
	receiveNothing(t, l, watcher, 300*time.Millisecond)
}

func testPresenceTwoProcesses(t *testing.T, newPair PairFactory) {
	a, b := newPair(t, Config{})
	group := unique(t, "presence-two")
	ca, cb := newChannels(t, a, 2), newChannels(t, b, 3)
	wa, wb := ca[1], cb[2]
	for _, w := range []struct {
		l  layer.Layer
		ch string
	}{{a, wa}, {b, wb}} {
		if err := w.l.GroupAdd(ctx(t), layer.PresenceGroup(group), w.ch); err != nil {
			t.Fatal(err)
		}
	}
	track(t, a, group, ca[0], "alice", nil)
	track(t, b, group, cb[0], "alice", nil) // alice's second connection, on the other process
	track(t, b, group, cb[1], "bob", nil)
	for _, l := range []layer.Layer{a, b} {
		wantPresence(t, l, group, map[string]int{"alice": 2, "bob": 1})
	}
	for _, w := range []struct {
		l  layer.Layer
		ch string
	}{{a, wa}, {b, wb}} {
		wantEvent(t, w.l, w.ch, group, layer.PresenceJoin, "alice")
		wantEvent(t, w.l, w.ch, group, layer.PresenceJoin, "bob")
	}
	untrack(t, a, group, ca[0]) // alice is still there, on b
	wantPresence(t, b, group, map[string]int{"alice": 1, "bob": 1})
	untrack(t, b, group, cb[0])
	for _, w := range []struct {
		l  layer.Layer
		ch string
	}{{a, wa}, {b, wb}} {
		wantEvent(t, w.l, w.ch, group, layer.PresenceLeave, "alice")
		receiveNothing(t, w.l, w.ch, 300*time.Millisecond)
		wantPresence(t, w.l, group, map[string]int{"bob": 1})
	}
}

func testPresenceProcessDies(t *testing.T, newPair PairFactory) {
	const ttl = 4 * time.Second
	a, b := newPair(t, Config{PresenceTTL: ttl})
	if a == b {
		// Not a missing dependency, so not a skip (CI counts skips): the scenario has nothing
		// to check on a layer that lives in one process.
		t.Log("one-process layer: no other process can die")
		return
	}
	closer, ok := b.(io.Closer)
	if !ok {
		t.Fatalf("%T is not an io.Closer", b)
	}
	group := unique(t, "presence-dies")
	ca, cb := newChannels(t, a, 2), newChannels(t, b, 1)
	if err := a.GroupAdd(ctx(t), layer.PresenceGroup(group), ca[1]); err != nil {
		t.Fatal(err)
	}
	track(t, a, group, ca[0], "dave", nil)
	track(t, b, group, cb[0], "erin", nil)
	wantEvent(t, a, ca[1], group, layer.PresenceJoin, "dave")
	wantEvent(t, a, ca[1], group, layer.PresenceJoin, "erin")
	// b's process dies: it untracks nothing.
	if err := closer.Close(); err != nil {
		t.Fatal(err)
	}
	died := time.Now()
	wantEvent(t, a, ca[1], group, layer.PresenceLeave, "erin")
	if d := time.Since(died); d > ttl+time.Second {
		t.Fatalf("leave of a dead process's user came %v after it died; the TTL is %v", d, ttl)
	}
	wantPresence(t, a, group, map[string]int{"dave": 1})
	receiveNothing(t, a, ca[1], 300*time.Millisecond)
}

func testPresenceBadInput(t *testing.T, newPair PairFactory) {
	l, _ := newPair(t, Config{})
	p := presence(t, l)
	ch := newChannels(t, l, 1)[0]
	if err := p.PresenceAdd(ctx(t), "bad group!", ch, layer.PresenceInfo{User: "u"}); !errors.Is(err, layer.ErrInvalidName) {
		t.Fatalf("PresenceAdd with a bad group: %v, want ErrInvalidName", err)
	}
	if err := p.PresenceAdd(ctx(t), "ok", "bad channel!", layer.PresenceInfo{User: "u"}); !errors.Is(err, layer.ErrInvalidName) {
		t.Fatalf("PresenceAdd with a bad channel: %v, want ErrInvalidName", err)
	}
	if err := p.PresenceAdd(ctx(t), "ok", ch, layer.PresenceInfo{}); !errors.Is(err, layer.ErrNoUser) {
		t.Fatalf("PresenceAdd without a user: %v, want ErrNoUser", err)
	}
	long := strings.Repeat("g", layer.MaxNameLength) // valid, but its companion group is not
	if err := p.PresenceAdd(ctx(t), long, ch, layer.PresenceInfo{User: "u"}); !errors.Is(err, layer.ErrInvalidName) {
		t.Fatalf("PresenceAdd with a group too long for its companion: %v, want ErrInvalidName", err)
	}
	if _, err := p.PresenceList(ctx(t), "bad group!"); !errors.Is(err, layer.ErrInvalidName) {
		t.Fatalf("PresenceList with a bad group: %v, want ErrInvalidName", err)
	}
	if _, _, err := p.PresenceCount(ctx(t), "bad group!"); !errors.Is(err, layer.ErrInvalidName) {
		t.Fatalf("PresenceCount with a bad group: %v, want ErrInvalidName", err)
	}
}

// A History rule that matches the companion group (as "chat_*" matches "chat_x.presence") keeps
// no presence event: the events are live only, and none is replayed, stale, to a resuming channel.
func testPresenceEventsNotKept(t *testing.T, newPair PairFactory) {
	group := unique(t, "kept")
	a, b := newPair(t, Config{History: []layer.HistoryRule{{Pattern: group + "*", Size: 100}}})
	r, ok := b.(layer.Resumer)
	if !ok {
		t.Skipf("%T does not implement layer.Resumer", b)
	}
	cb := newChannels(t, b, 2)
	if err := b.GroupAdd(ctx(t), layer.PresenceGroup(group), cb[0]); err != nil {
		t.Fatal(err)
	}
	ch := newChannels(t, a, 1)[0]
	track(t, a, group, ch, "dave", nil)
	wantEvent(t, b, cb[0], group, layer.PresenceJoin, "dave")
	untrack(t, a, group, ch)
	wantEvent(t, b, cb[0], group, layer.PresenceLeave, "dave")
	rec, err := r.GroupAddSince(ctx(t), layer.PresenceGroup(group), cb[1], layer.Position{})
	if err != nil {
		t.Fatal(err)
	}
	if rec.Last.Offset != 0 {
		t.Fatalf("the companion group's history reaches position %v: presence events were kept", rec.Last)
	}
}
