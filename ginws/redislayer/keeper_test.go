package redislayer_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"ginws.dev/ginws/layer"
	"ginws.dev/ginws/redislayer"
)

// groupMembers lists a group's members as Redis holds them.
func groupMembers(t *testing.T, prefix, group string) []string {
	t.Helper()
	c := rawClient(t, db1)
	ms, err := c.Do(ctxT(t), c.B().Zrange().Key(prefix+":group:"+group).Min("0").Max("-1").Build()).AsStrSlice()
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(ms)
	return ms
}

// A live membership outlives GroupExpiry: the layer rewrites it before it expires. Channels'
// expiry still applies to what the process no longer vouches for — a channel whose subscriber left
// without GroupDiscard, a process-local channel nobody receives, a normal channel.
func TestMembershipsRefreshed(t *testing.T) {
	t.Parallel()
	prefix := testPrefix()
	l := newLayer(t, redislayer.Config{Prefix: prefix, GroupExpiry: 2 * time.Second})
	live, _ := l.NewChannel(ctxT(t), "")
	left, _ := l.NewChannel(ctxT(t), "")
	unread, _ := l.NewChannel(ctxT(t), "")
	got := make(chan string, 4)
	unsub, err := l.Subscribe(live, func(e *layer.Envelope) error { got <- e.Message.Type(); return nil })
	if err != nil {
		t.Fatal(err)
	}
	defer unsub()
	unsubLeft, err := l.Subscribe(left, func(*layer.Envelope) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	for _, ch := range []string{live, left, unread, "plain"} {
		if err := l.GroupAdd(ctxT(t), "g", ch); err != nil {
			t.Fatal(err)
		}
	}
	if st := l.Stats(); st.Memberships != 3 {
		t.Errorf("Memberships = %d, want 3 (a normal channel's is not the process's to keep)", st.Memberships)
	}
	unsubLeft() // a connection that ended without leaving its groups
	time.Sleep(4500 * time.Millisecond)
	if err := l.GroupSend(ctxT(t), "g", layer.Message{"type": "still.here"}); err != nil {
		t.Fatal(err)
	}
	select {
	case typ := <-got:
		if typ != "still.here" {
			t.Fatalf("got %q", typ)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a live member left its group by expiry")
	}
	if ms := groupMembers(t, prefix, "g"); !slices.Equal(ms, []string{live}) {
		t.Errorf("members after 2×GroupExpiry: %v; want only the live channel", ms)
	}
	if st := l.Stats(); st.Refreshed == 0 || st.Memberships != 1 {
		t.Errorf("Refreshed %d, Memberships %d; want > 0 and 1", st.Refreshed, st.Memberships)
	}
}

// Redis loses this process's data without any connection breaking (here: its keys are deleted, as
// a FLUSHALL or a failover to an empty replica would): the keeper notices the marker gone, the
// layer is degraded — group sends are refused, not sent to a partial group — and the memberships
// come back.
func TestResyncAfterDataLoss(t *testing.T) {
	t.Parallel()
	prefix := testPrefix()
	l := newLayer(t, redislayer.Config{Prefix: prefix})
	ch, _ := l.NewChannel(ctxT(t), "")
	got := make(chan string, 4)
	unsub, err := l.Subscribe(ch, func(e *layer.Envelope) error { got <- e.Message.Type(); return nil })
	if err != nil {
		t.Fatal(err)
	}
	defer unsub()
	if err := l.GroupAdd(ctxT(t), "g", ch); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return l.Health(ctxT(t)) == nil })
	c := rawClient(t, db1)
	// The keeper writes the marker after the membership, on its own goroutine: wait for both.
	var keys []string
	waitFor(t, func() bool {
		keys, err = c.Do(ctxT(t), c.B().Keys().Pattern(prefix+"*").Build()).AsStrSlice()
		return err != nil || len(keys) == 2 // the group and the marker
	})
	if err != nil {
		t.Fatalf("keys %v, %v", keys, err)
	}
	if err := c.Do(ctxT(t), c.B().Del().Key(keys...).Build()).Error(); err != nil {
		t.Fatal(err)
	}
	var healthErr error
	waitFor(t, func() bool { healthErr = l.Health(ctxT(t)); return healthErr != nil })
	if !errors.Is(healthErr, redislayer.ErrDegraded) {
		t.Fatalf("Health = %v, want ErrDegraded", healthErr)
	}
	if err := l.GroupSend(ctxT(t), "g", layer.Message{"type": "x"}); !errors.Is(err, redislayer.ErrDegraded) {
		t.Errorf("GroupSend while degraded = %v, want ErrDegraded", err)
	}
	waitFor(t, func() bool { return l.Health(ctxT(t)) == nil })
	if ms := groupMembers(t, prefix, "g"); !slices.Equal(ms, []string{ch}) {
		t.Fatalf("members after the resync: %v", ms)
	}
	if err := l.GroupSend(ctxT(t), "g", layer.Message{"type": "back"}); err != nil {
		t.Fatal(err)
	}
	select {
	case typ := <-got:
		if typ != "back" {
			t.Fatalf("got %q", typ)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no delivery after the resync")
	}
	st := l.Stats()
	if st.Degradations != 1 || st.Readded != 1 || st.GroupSendsRefused != 1 || st.DegradedShards != 0 || st.DegradedFor < time.Second {
		t.Errorf("Stats after one data loss: %+v", st)
	}
}

// GroupDiscard forgets the membership even when Redis refuses the ZREM, and a membership whose
// GroupAdd failed is not kept.
func TestHealthAndTrackingWithRedisDown(t *testing.T) {
	t.Parallel()
	l, err := redislayer.New(redislayer.Config{Hosts: []string{"redis://127.0.0.1:1/0"}, CallTimeout: time.Second, DialTimeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ch, _ := l.NewChannel(ctxT(t), "")
	if err := l.GroupAdd(ctxT(t), "g", ch); err == nil {
		t.Fatal("GroupAdd succeeded with no Redis")
	}
	if n := l.Stats().Memberships; n != 0 {
		t.Errorf("a failed GroupAdd left %d memberships", n)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := l.Health(ctx); err == nil {
		t.Error("Health = nil with no Redis")
	}
	waitFor(t, func() bool { return l.Stats().DegradedShards == 1 })
	if err := l.GroupSend(ctxT(t), "g", layer.Message{"type": "x"}); !errors.Is(err, redislayer.ErrDegraded) {
		t.Errorf("GroupSend with no Redis = %v, want ErrDegraded", err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := l.Health(context.Background()); !errors.Is(err, layer.ErrClosed) {
		t.Errorf("Health after Close = %v, want ErrClosed", err)
	}
}
