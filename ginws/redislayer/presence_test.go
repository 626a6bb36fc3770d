package redislayer_test

import (
	"reflect"
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
		c := redislayer.Config{Hosts: hosts, Prefix: testPrefix(), PresenceTTL: cfg.PresenceTTL}
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
