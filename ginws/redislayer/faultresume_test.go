package redislayer_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"ginws.dev/ginws/layer"
	"ginws.dev/ginws/redislayer"
)

// resumeProbe is a channel that records what it receives, by message number.
type resumeProbe struct {
	mu   sync.Mutex
	seen map[int64]int
	pos  []layer.Position
}

func newProbe(t *testing.T, l *redislayer.Layer) (*resumeProbe, string) {
	t.Helper()
	ch, err := l.NewChannel(ctxT(t), "")
	if err != nil {
		t.Fatal(err)
	}
	p := &resumeProbe{seen: map[int64]int{}}
	unsub, err := l.Subscribe(ch, func(e *layer.Envelope) error {
		n, _ := e.Message.Int("n")
		p.mu.Lock()
		p.seen[n]++
		p.pos = append(p.pos, e.Position)
		p.mu.Unlock()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(unsub)
	return p, ch
}

// count returns how many of the messages from..to arrived, and how many arrived more than once.
func (p *resumeProbe) count(from, to int) (got, dups int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for n := from; n <= to; n++ {
		if k := p.seen[int64(n)]; k > 0 {
			got++
			dups += k - 1
		}
	}
	return got, dups
}

func (p *resumeProbe) last() layer.Position {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.pos[len(p.pos)-1]
}

func waitCount(t *testing.T, p *resumeProbe, from, to int) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; {
		if got, _ := p.count(from, to); got == to-from+1 {
			return
		}
		if time.Now().After(deadline) {
			got, _ := p.count(from, to)
			t.Fatalf("received %d of messages %d..%d", got, from, to)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestFaultResume counts what a client resuming from its last position gets across Redis faults:
// after a pause (DEBUG SLEEP) the history is whole, and the messages it missed while away are all
// recovered, none twice; after a restart that lost the data, the resume reports a gap (a new
// epoch) and replays what the new epoch holds.
func TestFaultResume(t *testing.T) {
	srv := startRedis(t)
	cfg := rigConfig([]string{srv.url(0)}, testPrefix())
	cfg.History = []layer.HistoryRule{{Pattern: "room.*", Size: 1000}}
	l, err := redislayer.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	const group = "room.fault"
	send := func(from, to int) (ok int) {
		for n := from; n <= to; n++ {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			if l.GroupSend(ctx, group, layer.Message{"type": "m", "n": n}) == nil {
				ok++
			}
			cancel()
		}
		return ok
	}
	healthy := func() {
		t.Helper()
		for deadline := time.Now().Add(20 * time.Second); l.Health(ctxT(t)) != nil; {
			if time.Now().After(deadline) {
				t.Fatal("the layer did not recover")
			}
			time.Sleep(20 * time.Millisecond)
		}
	}

	// A client receives 1..100 live, goes away; 101..200 are sent, Redis pauses, 201..300 are
	// sent after it; the client comes back from its last position.
	a, ach := newProbe(t, l)
	if _, err := l.GroupAddSince(ctxT(t), group, ach, layer.Position{}); err != nil {
		t.Fatal(err)
	}
	send(1, 100)
	waitCount(t, a, 1, 100)
	left := a.last()
	if err := l.GroupDiscard(ctxT(t), group, ach); err != nil {
		t.Fatal(err)
	}
	sentAway := send(101, 200)
	<-srv.pause(1500 * time.Millisecond)
	healthy()
	sentAfter := send(201, 300)
	b, bch := newProbe(t, l)
	rec, err := l.GroupAddSince(ctxT(t), group, bch, left)
	if err != nil {
		t.Fatal(err)
	}
	sent := sentAway + sentAfter
	waitCount(t, b, 101, 100+sentAway)
	got, dups := b.count(101, 300)
	t.Logf("Redis paused: sent while away %d (accepted %d), after the pause %d (accepted %d); resume from %v: gap %v, recovered %d, lost %d, duplicates %d",
		100, sentAway, 100, sentAfter, left, rec.Gap, rec.Replayed, sent-got, dups)
	if rec.Gap || got != sent || dups != 0 || rec.Replayed != sent {
		t.Fatalf("resume after a pause: %+v, got %d of %d accepted, %d duplicates; want all, once, no gap", rec, got, sent, dups)
	}

	// Redis restarted empty: the history is gone with it. The client resuming from before the
	// restart is told (a gap, new epoch) and gets what the new epoch holds.
	before := b.last()
	srv.kill()
	srv.restart()
	healthy()
	sentNew := send(301, 310)
	c, cch := newProbe(t, l)
	rec, err = l.GroupAddSince(ctxT(t), group, cch, before)
	if err != nil {
		t.Fatal(err)
	}
	waitCount(t, c, 301, 300+sentNew)
	t.Logf("Redis restarted empty: resume from %v: gap %v, last %v, replayed %d of the %d sent since", before, rec.Gap, rec.Last, rec.Replayed, sentNew)
	if !rec.Gap || rec.Last.Epoch == before.Epoch || rec.Replayed != sentNew {
		t.Fatalf("resume after Redis lost its data: %+v; want a gap, a new epoch and %d replayed", rec, sentNew)
	}
}

// TestFaultResumeSentinel: the history lives on the master and its replica; after the master is
// killed and the replica promoted, a client resuming from its last position recovers every message
// it missed — those sent before the failover (replicated) and after it — once each, with no gap.
func TestFaultResumeSentinel(t *testing.T) {
	master := startRedis(t)
	replica := startRedis(t, "--replicaof", "127.0.0.1", fmt.Sprint(master.port))
	waitReplicaSynced(t, replica)
	var sentinels []*redisProc
	for i := 0; i < 3; i++ {
		sentinels = append(sentinels, startSentinel(t, master.port, 2))
	}
	waitSentinels(t, sentinels, 20*time.Second)
	url := fmt.Sprintf("redis://%s/0?addr=%s&addr=%s&master_set=mymaster", sentinels[0].addr(), sentinels[1].addr(), sentinels[2].addr())
	cfg := rigConfig([]string{url}, testPrefix())
	cfg.History = []layer.HistoryRule{{Pattern: "room.*", Size: 1000}}
	l, err := redislayer.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	const group = "room.failover"
	send := func(from, to int) (ok int) {
		for n := from; n <= to; n++ {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			if l.GroupSend(ctx, group, layer.Message{"type": "m", "n": n}) == nil {
				ok++
			}
			cancel()
		}
		return ok
	}
	a, ach := newProbe(t, l)
	if _, err := l.GroupAddSince(ctxT(t), group, ach, layer.Position{}); err != nil {
		t.Fatal(err)
	}
	send(1, 50)
	waitCount(t, a, 1, 50)
	left := a.last()
	if err := l.GroupDiscard(ctxT(t), group, ach); err != nil {
		t.Fatal(err)
	}
	sentBefore := send(51, 100)
	// What the master acknowledged reaches the replica before the master dies (a failover loses
	// what was not replicated: see the README's Delivery guarantees).
	mc := master.client()
	if err := mc.Do(ctxT(t), mc.B().Wait().Numreplicas(1).Timeout(5000).Build()).Error(); err != nil {
		t.Fatal(err)
	}
	master.kill()
	if port := waitMaster(t, sentinels[0], master.port, 30*time.Second); port != replica.port {
		t.Fatalf("the sentinels promoted port %d, want the replica's %d", port, replica.port)
	}
	for deadline := time.Now().Add(30 * time.Second); l.Health(ctxT(t)) != nil; {
		if time.Now().After(deadline) {
			t.Fatal("the layer did not recover after the failover")
		}
		time.Sleep(20 * time.Millisecond)
	}
	sentAfter := send(101, 150)
	b, bch := newProbe(t, l)
	rec, err := l.GroupAddSince(ctxT(t), group, bch, left)
	if err != nil {
		t.Fatal(err)
	}
	sent := sentBefore + sentAfter
	waitCount(t, b, 51, 100)
	got, dups := b.count(51, 150)
	t.Logf("Sentinel failover: sent while away %d before the failover (accepted %d) and 50 after it (accepted %d); resume from %v: gap %v, recovered %d, lost %d, duplicates %d",
		50, sentBefore, sentAfter, left, rec.Gap, rec.Replayed, sent-got, dups)
	if rec.Gap || got != sent || dups != 0 {
		t.Fatalf("resume after a failover: %+v, got %d of %d accepted, %d duplicates; want all, once, no gap", rec, got, sent, dups)
	}
}
