package redislayer_test

import (
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"ginws.dev/ginws/layer"
	"ginws.dev/ginws/layertest"
	"ginws.dev/ginws/redislayer"
	"ginws.dev/ginws/redislayer/redistest"
)

// presencePair makes two layers on the same hosts and prefix: two processes sharing Redis.
func presencePair(hosts ...string) layertest.PairFactory {
	return func(t *testing.T, cfg layertest.Config) (layer.Layer, layer.Layer) {
		c := redislayer.Config{Hosts: hosts, Prefix: testPrefix(), PresenceTTL: cfg.PresenceTTL, History: cfg.History}
		return newLayer(t, c), newLayer(t, c)
	}
}

func TestPresenceConformanceOneHost(t *testing.T) {
	redistest.Need(t)
	t.Parallel()
	layertest.RunPresence(t, presencePair(db1))
}

func TestPresenceConformanceTwoShards(t *testing.T) {
	redistest.Need(t)
	t.Parallel()
	layertest.RunPresence(t, presencePair(db1, db2))
}

// Redis restarts empty: the presence this process tracks comes back without the app doing
// anything, as its memberships do.
func TestPresenceRestoredAfterRedisRestart(t *testing.T) {
	srv := startRedis(t)
	l, err := redislayer.New(redislayer.Config{
		Hosts: []string{srv.url(0)}, PresenceTTL: 2 * time.Second,
		CallTimeout: 2 * time.Second, MaxBackoff: 200 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	chs := make([]string, 2)
	for i := range chs {
		chs[i], _ = l.NewChannel(ctxT(t), "")
	}
	for i, user := range []string{"alice", "bob"} {
		if err := l.PresenceAdd(ctxT(t), "room", chs[i], layer.PresenceInfo{User: user, Info: map[string]any{"n": i}}); err != nil {
			t.Fatal(err)
		}
	}
	want := []layer.PresenceEntry{{User: "alice", Connections: 1, Info: map[string]any{"n": 0.0}}, {User: "bob", Connections: 1, Info: map[string]any{"n": 1.0}}}
	list, err := l.PresenceList(ctxT(t), "room")
	if err != nil || !reflect.DeepEqual(list, want) {
		t.Fatalf("PresenceList = %v, %v; want %v", list, err, want)
	}
	srv.kill()
	srv.restart() // empty
	waitFor(t, func() bool {
		list, err := l.PresenceList(ctxT(t), "room")
		return err == nil && reflect.DeepEqual(list, want)
	})
	if st := l.Stats(); st.PresenceReadded != 2 || st.Tracked != 2 {
		t.Errorf("Stats: PresenceReadded %d, Tracked %d; want 2 and 2", st.PresenceReadded, st.Tracked)
	}
	for _, ch := range chs {
		if err := l.PresenceDiscard(ctxT(t), "room", ch); err != nil {
			t.Fatal(err)
		}
	}
	if users, conns, err := l.PresenceCount(ctxT(t), "room"); err != nil || users != 0 || conns != 0 {
		t.Fatalf("PresenceCount after discarding all = %d, %d, %v", users, conns, err)
	}
}

// A storm of concurrent tracks and untracks from two processes, each user with a connection on
// both: the writes are coalesced (PresenceLinger) and the events batched, and every watcher — one
// on a process-local channel, one on a normal channel — still gets each user's join once, then its
// leave once, and both processes list the same users.
func TestPresenceBatchedStorm(t *testing.T) {
	redistest.Need(t)
	t.Parallel()
	const users = 150
	cfg := redislayer.Config{Hosts: []string{db1}, Prefix: testPrefix(), PresenceLinger: 50 * time.Millisecond, Capacity: 4 * users}
	a, b, w := newLayer(t, cfg), newLayer(t, cfg), newLayer(t, cfg)
	local, _ := w.NewChannel(ctxT(t), "watch")
	const normal = "watch-normal"
	for _, ch := range []string{local, normal} {
		if err := w.GroupAdd(ctxT(t), layer.PresenceGroup("room"), ch); err != nil {
			t.Fatal(err)
		}
	}
	// each runs f(i, l, channel) for every user on both processes at once.
	chans := make([][2]string, users)
	for i := range chans {
		chans[i][0], _ = a.NewChannel(ctxT(t), "")
		chans[i][1], _ = b.NewChannel(ctxT(t), "")
	}
	each := func(f func(i int, l *redislayer.Layer, ch string) error) {
		var wg sync.WaitGroup
		errs := make(chan error, 2*users)
		for i := range users {
			for k, l := range []*redislayer.Layer{a, b} {
				wg.Add(1)
				go func() {
					defer wg.Done()
					errs <- f(i, l, chans[i][k])
				}()
			}
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	before := a.Stats().GroupSends + b.Stats().GroupSends
	each(func(i int, l *redislayer.Layer, ch string) error {
		return l.PresenceAdd(ctxT(t), "room", ch, layer.PresenceInfo{User: fmt.Sprintf("u%03d", i), Info: map[string]any{"i": i}})
	})
	for _, l := range []*redislayer.Layer{a, b} {
		list, err := l.PresenceList(ctxT(t), "room")
		if err != nil || len(list) != users {
			t.Fatalf("PresenceList: %d users, %v; want %d", len(list), err, users)
		}
		for i, e := range list {
			if e.User != fmt.Sprintf("u%03d", i) || e.Connections != 2 || e.Info["i"] != float64(i) {
				t.Fatalf("PresenceList[%d] = %+v; want u%03d with 2 connections and info i=%d", i, e, i, i)
			}
		}
	}
	each(func(i int, l *redislayer.Layer, ch string) error { return l.PresenceDiscard(ctxT(t), "room", ch) })
	if sends := a.Stats().GroupSends + b.Stats().GroupSends - before; sends >= 2*users {
		t.Errorf("%d group sends announced %d joins and leaves: the events were not batched", sends, 2*users)
	}
	for _, l := range []*redislayer.Layer{a, b} {
		if n, conns, err := l.PresenceCount(ctxT(t), "room"); err != nil || n != 0 || conns != 0 {
			t.Fatalf("PresenceCount after the storm = %d, %d, %v; want 0, 0", n, conns, err)
		}
	}
	for _, ch := range []string{local, normal} {
		seen := map[string][]string{} // user → its events, in order
		for range 2 * users {
			m, err := w.Receive(ctxT(t), ch)
			if err != nil {
				t.Fatalf("Receive(%s): %v", ch, err)
			}
			if m["group"] != "room" {
				t.Fatalf("event %v: group is not room", m)
			}
			user, _ := m["user"].(string)
			seen[user] = append(seen[user], m.Type())
			if m.Type() == layer.PresenceJoin && m["info"] == nil {
				t.Errorf("join of %s without its info: %v", user, m)
			}
		}
		for i := range users {
			user := fmt.Sprintf("u%03d", i)
			if got := seen[user]; !reflect.DeepEqual(got, []string{layer.PresenceJoin, layer.PresenceLeave}) {
				t.Errorf("%s got %v for %s; want one join then one leave", ch, got, user)
			}
		}
	}
}
