package redislayer_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"ginws.dev/ginws/layer"
	"ginws.dev/ginws/redislayer"
)

// Many local members of one group get one message decoded once: every subscriber is handed the
// same *Envelope (so RelayJSON encodes it once for all), and Redis holds one member per process.
func TestSubscribersShareOneEnvelope(t *testing.T) {
	t.Parallel()
	l := newLayer(t, redislayer.Config{})
	const members = 50
	var mu sync.Mutex
	got := map[*layer.Envelope]int{}
	done := make(chan struct{}, members)
	for i := 0; i < members; i++ {
		ch, err := l.NewChannel(ctxT(t), "")
		if err != nil {
			t.Fatal(err)
		}
		unsub, err := l.Subscribe(ch, func(e *layer.Envelope) error {
			mu.Lock()
			got[e]++
			mu.Unlock()
			done <- struct{}{}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(unsub)
		if err := l.GroupAdd(ctxT(t), "many", ch); err != nil {
			t.Fatal(err)
		}
	}
	before := l.Stats()
	if err := l.GroupSend(ctxT(t), "many", layer.Message{"type": "chat.message", "message": "hi"}); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < members; i++ {
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatalf("%d of %d subscribers got the message", i, members)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 1 {
		t.Fatalf("subscribers got %d distinct envelopes, want 1 shared by all", len(got))
	}
	for e, n := range got {
		if n != members || e.Message.Type() != "chat.message" {
			t.Fatalf("envelope %v delivered %d times", e.Message, n)
		}
	}
	after := l.Stats()
	if d := after.Received - before.Received; d != 1 {
		t.Errorf("popped %d messages from Redis for one group send to one process, want 1", d)
	}
	if d := after.Delivered - before.Delivered; d != members {
		t.Errorf("Delivered grew by %d, want %d", d, members)
	}
}

// A subscriber that refuses (full) counts a drop; the loop goes on for the others.
func TestSubscriberFullCountsDrop(t *testing.T) {
	t.Parallel()
	l := newLayer(t, redislayer.Config{})
	full, _ := l.NewChannel(ctxT(t), "")
	ok, _ := l.NewChannel(ctxT(t), "")
	got := make(chan string, 4)
	u1, err := l.Subscribe(full, func(*layer.Envelope) error { return layer.ErrChannelFull })
	if err != nil {
		t.Fatal(err)
	}
	defer u1()
	u2, err := l.Subscribe(ok, func(e *layer.Envelope) error { got <- e.Message.Type(); return nil })
	if err != nil {
		t.Fatal(err)
	}
	defer u2()
	for _, ch := range []string{full, ok} {
		if err := l.GroupAdd(ctxT(t), "g", ch); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.GroupSend(ctxT(t), "g", layer.Message{"type": "x"}); err != nil {
		t.Fatal(err)
	}
	select {
	case typ := <-got:
		if typ != "x" {
			t.Fatalf("got %q", typ)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the other subscriber got nothing")
	}
	if d := l.Stats().Dropped; d != 1 {
		t.Errorf("Dropped = %d, want 1", d)
	}
	if _, err := l.Subscribe("specific.someoneelse!x", func(*layer.Envelope) error { return nil }); err == nil {
		t.Error("subscribing to another process's channel must fail")
	}
}

// Messages that reach a channel after its subscriber left (a closed connection still in a group)
// are discarded, not buffered for a Receive that never comes.
func TestUnsubscribedChannelKeepsNothing(t *testing.T) {
	t.Parallel()
	l := newLayer(t, redislayer.Config{})
	gone, _ := l.NewChannel(ctxT(t), "")
	live, _ := l.NewChannel(ctxT(t), "")
	got := make(chan struct{}, 4)
	u1, err := l.Subscribe(gone, func(*layer.Envelope) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	u2, err := l.Subscribe(live, func(*layer.Envelope) error { got <- struct{}{}; return nil })
	if err != nil {
		t.Fatal(err)
	}
	defer u2()
	for _, ch := range []string{gone, live} {
		if err := l.GroupAdd(ctxT(t), "g", ch); err != nil {
			t.Fatal(err)
		}
	}
	u1()
	if err := l.GroupSend(ctxT(t), "g", layer.Message{"type": "late"}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-got:
	case <-time.After(5 * time.Second):
		t.Fatal("the live subscriber got nothing")
	}
	if n := l.Stats().LocalBuffers; n != 0 {
		t.Errorf("%d local buffers after a message to an unsubscribed channel, want 0", n)
	}
}

// A backlog popped in one batch reaches each channel complete and in order, whether the channel is
// subscribed already or buffered until it is.
func TestBatchKeepsOrder(t *testing.T) {
	t.Parallel()
	l := newLayer(t, redislayer.Config{})
	a, _ := l.NewChannel(ctxT(t), "")
	b, _ := l.NewChannel(ctxT(t), "")
	const n = 40
	for i := 0; i < n; i++ {
		ch := a
		if i%2 == 1 {
			ch = b
		}
		if err := l.Send(ctxT(t), ch, layer.Message{"type": "m", "i": i}); err != nil {
			t.Fatal(err)
		}
		if i%4 == 3 {
			if err := l.GroupAdd(ctxT(t), "both", a); err != nil {
				t.Fatal(err)
			}
			if err := l.GroupAdd(ctxT(t), "both", b); err != nil {
				t.Fatal(err)
			}
			if err := l.GroupSend(ctxT(t), "both", layer.Message{"type": "g", "i": i}); err != nil {
				t.Fatal(err)
			}
		}
	}
	type got struct {
		mu   sync.Mutex
		seen []int64
	}
	var ga, gb got
	sub := func(g *got) func(*layer.Envelope) error {
		return func(e *layer.Envelope) error {
			i, _ := e.Message.Int("i")
			g.mu.Lock()
			g.seen = append(g.seen, i)
			g.mu.Unlock()
			return nil
		}
	}
	ua, err := l.Subscribe(a, sub(&ga)) // starts the loop: the backlog comes in one batch
	if err != nil {
		t.Fatal(err)
	}
	defer ua()
	time.Sleep(300 * time.Millisecond) // b's messages are buffered meanwhile
	ub, err := l.Subscribe(b, sub(&gb))
	if err != nil {
		t.Fatal(err)
	}
	defer ub()
	want := func(odd int) []int64 {
		var w []int64
		for i := 0; i < n; i++ {
			if i%2 == odd {
				w = append(w, int64(i))
			}
			if i%4 == 3 {
				w = append(w, int64(i)) // the group message after the direct one
			}
		}
		return w
	}
	deadline := time.Now().Add(5 * time.Second)
	for _, c := range []struct {
		g    *got
		want []int64
	}{{&ga, want(0)}, {&gb, want(1)}} {
		for {
			c.g.mu.Lock()
			seen := append([]int64(nil), c.g.seen...)
			c.g.mu.Unlock()
			if len(seen) >= len(c.want) || time.Now().After(deadline) {
				if fmt.Sprint(seen) != fmt.Sprint(c.want) {
					t.Fatalf("got %v\nwant %v", seen, c.want)
				}
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}

// With ReceiveLinger the loop pauses between pops; messages still all arrive, in order, and Close
// waits neither for the pause nor for the blocking pop. The pop's PollTimeout is 30 s here, so a
// Close that waited for it would take that long: the 10 s bound tells the two apart on any
// machine, where 1 s against the default 1 s poll did not.
func TestReceiveLinger(t *testing.T) {
	t.Parallel()
	l := newLayer(t, redislayer.Config{ReceiveLinger: 50 * time.Millisecond, PollTimeout: 30 * time.Second})
	ch, _ := l.NewChannel(ctxT(t), "")
	got := make(chan int64, 10)
	u, err := l.Subscribe(ch, func(e *layer.Envelope) error {
		i, _ := e.Message.Int("i")
		got <- i
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	defer u()
	for i := 0; i < 5; i++ {
		if err := l.Send(ctxT(t), ch, layer.Message{"type": "m", "i": i}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	for i := int64(0); i < 5; i++ {
		select {
		case g := <-got:
			if g != i {
				t.Fatalf("got message %d, want %d", g, i)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("message %d did not arrive", i)
		}
	}
	start := time.Now()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("Close took %v: it waited for the blocking pop", d)
	}
}
