package redislayer

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/redis/rueidis"

	"ginws.dev/ginws/layer"
	"ginws.dev/ginws/redislayer/redistest"
)

// internalLayer returns a layer on Redis DB 1 with a fresh prefix, flushed and closed at the end.
func internalLayer(t testing.TB, cfg Config) *Layer {
	t.Helper()
	redistest.Need(t)
	cfg.Hosts = []string{"redis://127.0.0.1:6379/1"}
	cfg.Prefix = fmt.Sprintf("asgitest%08x:", rand.Uint32())
	l, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = l.Flush(ctx)
		_ = l.Close()
	})
	return l
}

// A message put back after its key vanished (the pop took the last member) gets the key's expiry
// again, as every send gives it.
func TestPutBackKeepsExpiry(t *testing.T) {
	t.Parallel()
	l := internalLayer(t, Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	key := l.cfg.Prefix + "putback"
	c := l.shards[0]
	l.putBack(c, key, rueidis.ZScore{Member: "m", Score: 1})
	ttl, err := c.Do(ctx, c.B().Ttl().Key(key).Build()).AsInt64()
	if err != nil {
		t.Fatal(err)
	}
	if ttl <= 0 || ttl > l.expirySec {
		t.Fatalf("TTL after a put-back = %d, want 1..%d", ttl, l.expirySec)
	}
}

// The set of unsubscribed channels stays bounded without any message arriving: entries older than
// GroupExpiry are forgotten on the next unsubscribe, and at most maxGone are kept.
func TestGoneBounded(t *testing.T) {
	t.Parallel()
	defer func(n int) { maxGone = n }(maxGone)
	maxGone = 10
	l := internalLayer(t, Config{GroupExpiry: time.Hour})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for i := 0; i < 50; i++ {
		ch, err := l.NewChannel(ctx, "")
		if err != nil {
			t.Fatal(err)
		}
		unsubscribe, err := l.Subscribe(ch, func(*layer.Envelope) error { return nil })
		if err != nil {
			t.Fatal(err)
		}
		unsubscribe()
	}
	l.mu.Lock()
	n, q := l.gone.len(), len(l.gone.queue)
	l.mu.Unlock()
	if n != 10 || q != 10 {
		t.Fatalf("gone holds %d channels (queue %d) after 50 unsubscribes; want the bound 10", n, q)
	}

	var g goneSet
	g.at = make(map[string]time.Time)
	t0 := time.Now()
	g.add("a", t0, time.Minute)
	g.add("b", t0.Add(30*time.Second), time.Minute)
	g.remove("b")
	g.add("c", t0.Add(2*time.Minute), time.Minute) // forgets a (expired) and b's stale entry
	if g.has("a") || g.has("b") || !g.has("c") || len(g.queue) != 1 {
		t.Fatalf("after expiry: a=%v b=%v c=%v queue=%d; want only c", g.has("a"), g.has("b"), g.has("c"), len(g.queue))
	}
}

// A channel named twice in a group message's "__asgi_channel__" gets the message once.
func TestDuplicateChannelDeliveredOnce(t *testing.T) {
	t.Parallel()
	l := internalLayer(t, Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ch, err := l.NewChannel(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan string, 10)
	unsubscribe, err := l.Subscribe(ch, func(e *layer.Envelope) error {
		typ, _ := e.Message.Str("type")
		got <- typ
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	defer unsubscribe()
	b, err := encodeBody(layer.Message{"type": "twice"})
	if err != nil {
		t.Fatal(err)
	}
	c := l.shards[0]
	member := string(b.member(randomPrefix(), "", []string{ch, ch}))
	if err := c.Do(ctx, c.B().Zadd().Key(l.cfg.Prefix+layer.NonLocalName(ch)).ScoreMember().ScoreMember(scoreFloat(time.Now()), member).Build()).Error(); err != nil {
		t.Fatal(err)
	}
	if err := l.Send(ctx, ch, layer.Message{"type": "marker"}); err != nil {
		t.Fatal(err)
	}
	var seen []string
	for len(seen) == 0 || seen[len(seen)-1] != "marker" {
		select {
		case typ := <-got:
			seen = append(seen, typ)
		case <-ctx.Done():
			t.Fatalf("got %v, no marker", seen)
		}
	}
	if len(seen) != 2 || seen[0] != "twice" {
		t.Fatalf("deliveries %v, want [twice marker]", seen)
	}
}
