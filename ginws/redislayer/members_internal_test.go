package redislayer

import (
	"slices"
	"testing"
	"time"
)

// The membership table's rules: who is written again, with which score, and who is forgotten.
func TestMembershipsCollect(t *testing.T) {
	m := newMemberships()
	t0 := time.Unix(1_000_000, 0)
	ttl := 10 * time.Second
	m.add("g", "sub!1", t0)
	m.add("h", "sub!1", t0)
	m.add("g", "polled!2", t0)
	m.add("g", "idle!3", t0)
	m.touch("polled!2", t0.Add(8*time.Second)) // a Receive
	subscribed := func(ch string) bool { return ch == "sub!1" }
	all := func(string) bool { return true }
	key := func(ms []member) []string {
		var out []string
		for _, x := range ms {
			out = append(out, x.group+" "+x.channel+" "+x.score.Sub(t0).String())
		}
		slices.Sort(out)
		return out
	}

	// Nothing was written before t0: a refresh writes nothing.
	now := t0.Add(6 * time.Second)
	if got := m.collect(now, t0, false, ttl, all, subscribed); len(got) != 0 {
		t.Errorf("refresh at +6s: %v", key(got))
	}
	// Due (written before +5s): the subscribed channel at now, the polled one at its last Receive;
	// the idle one has nothing newer to write.
	got := m.collect(now, t0.Add(5*time.Second), false, ttl, all, subscribed)
	want := []string{"g polled!2 8s", "g sub!1 6s", "h sub!1 6s"}
	if !slices.Equal(key(got), want) {
		t.Errorf("refresh: %v, want %v", key(got), want)
	}
	if stale := m.written(got); len(stale) != 0 {
		t.Errorf("stale: %v", key(stale))
	}
	// At +11s the idle channel (last active at t0) is no longer live and is forgotten; a resync
	// writes the others, one shard's groups only.
	now = t0.Add(11 * time.Second)
	got = m.collect(now, now, true, ttl, func(g string) bool { return g == "g" }, subscribed)
	want = []string{"g polled!2 8s", "g sub!1 11s"}
	if !slices.Equal(key(got), want) {
		t.Errorf("resync: %v, want %v", key(got), want)
	}
	if m.has("g", "idle!3") || m.len() != 3 {
		t.Errorf("the idle channel is still kept (%d memberships)", m.len())
	}
	// Discarded while being written: the writer must remove it again.
	m.forget("g", "polled!2")
	if stale := m.written(got); !slices.Equal(key(stale), []string{"g polled!2 8s"}) {
		t.Errorf("stale after a discard: %v", key(stale))
	}
	m.dropChannel("sub!1")
	if m.len() != 0 {
		t.Errorf("%d memberships after the subscriber left", m.len())
	}
}
