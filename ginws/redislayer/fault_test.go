package redislayer_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/redis/rueidis"

	"ginws.dev/ginws/layer"
	"ginws.dev/ginws/redislayer"
)

// Redis goes away and comes back on the same port: calls fail promptly meanwhile (also without a
// deadline of their own), the receive loop reconnects, and a subscriber gets what is sent after.
func TestRedisRestart(t *testing.T) {
	srv := startRedis(t)
	l, err := redislayer.New(redislayer.Config{
		Hosts:       []string{srv.url(0)},
		CallTimeout: 2 * time.Second, MaxBackoff: 200 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	ch, _ := l.NewChannel(ctxT(t), "")
	got := make(chan string, 16)
	unsub, err := l.Subscribe(ch, func(e *layer.Envelope) error { got <- e.Message.Type(); return nil })
	if err != nil {
		t.Fatal(err)
	}
	defer unsub()
	expect := func(typ string) {
		t.Helper()
		select {
		case g := <-got:
			if g != typ {
				t.Fatalf("got %q, want %q", g, typ)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("subscriber did not get %q", typ)
		}
	}
	if err := l.GroupAdd(ctxT(t), "g", ch); err != nil {
		t.Fatal(err)
	}
	if err := l.GroupSend(ctxT(t), "g", layer.Message{"type": "before"}); err != nil {
		t.Fatal(err)
	}
	expect("before")

	srv.kill()
	for _, call := range []struct {
		name string
		fn   func(context.Context) error
	}{
		{"Send", func(ctx context.Context) error { return l.Send(ctx, ch, layer.Message{"type": "x"}) }},
		{"GroupSend", func(ctx context.Context) error { return l.GroupSend(ctx, "g", layer.Message{"type": "x"}) }},
		{"GroupAdd", func(ctx context.Context) error { return l.GroupAdd(ctx, "g", ch) }},
	} {
		start := time.Now()
		err := call.fn(context.Background()) // no deadline: CallTimeout bounds it
		if err == nil {
			t.Errorf("%s succeeded with Redis down", call.name)
		}
		// Without CallTimeout the call would wait as long as its context allows, here forever;
		// the bound leaves a loaded machine 8 s over the 2 s timeout.
		if d := time.Since(start); d > 10*time.Second {
			t.Errorf("%s took %v with Redis down, want about CallTimeout (2 s)", call.name, d)
		}
	}
	// The receive loop notices and backs off.
	for deadline := time.Now().Add(10 * time.Second); l.Stats().LoopErrors == 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the receive loop did not report Redis going away")
		}
	}

	srv.restart() // empty: the group is gone with the old server
	// The first call on each connection of the pipeline may still fail (EOF) before rueidis
	// redials; traffic must resume within a few tries.
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := l.GroupAdd(ctxT(t), "g", ch)
		if err == nil {
			err = l.GroupSend(ctxT(t), "g", layer.Message{"type": "after"})
		}
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("calls still failing after the restart: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	expect("after")
	if l.Stats().Reconnects == 0 {
		t.Error("Reconnects = 0 after the loop resumed")
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := l.Send(ctxT(t), ch, layer.Message{"type": "x"}); err != layer.ErrClosed {
		t.Errorf("Send after Close = %v, want ErrLayerClosed", err)
	}
}

// New does not fail, nor block long, when Redis is down; Close is prompt and leaks nothing.
func TestNewWithRedisDown(t *testing.T) {
	t.Parallel()
	port := freePort(t)
	start := time.Now()
	l, err := redislayer.New(redislayer.Config{Hosts: []string{fmt.Sprintf("redis://127.0.0.1:%d/0", port)}, CallTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ch, _ := l.NewChannel(ctxT(t), "")
	unsub, err := l.Subscribe(ch, func(*layer.Envelope) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Send(context.Background(), ch, layer.Message{"type": "x"}); err == nil {
		t.Error("Send succeeded with no Redis")
	}
	unsub()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("New+Send+Close took %v with Redis down", d)
	}
	if _, err := redislayer.New(redislayer.Config{Hosts: []string{"http://nope"}}); err == nil {
		t.Error("a bad host URL must be an error")
	}
}

// Redis pauses (DEBUG SLEEP) longer than the receive loop's client-side wait while a message waits
// in the process key and the loop's next pop is on its way: Redis runs that pop when it wakes, so
// the loop must still be there to take the reply. A loop that gave up on the pop at its deadline
// (closing the connection) lost the popped batch, though Redis kept its data and the send had
// returned nil.
func TestRedisPausedDuringPop(t *testing.T) {
	srv := startRedis(t)
	l, err := redislayer.New(redislayer.Config{
		Hosts: []string{srv.url(0)}, CallTimeout: 300 * time.Millisecond, PollTimeout: 100 * time.Millisecond,
		DialTimeout: 300 * time.Millisecond, MaxBackoff: 200 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	ch, _ := l.NewChannel(ctxT(t), "")
	got := make(chan string, 16)
	gate := make(chan struct{})
	unsub, err := l.Subscribe(ch, func(e *layer.Envelope) error {
		got <- e.Message.Type()
		if e.Message.Type() == "first" {
			<-gate // holds the receive loop between two pops
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	defer unsub()
	if err := l.GroupAdd(ctxT(t), "g", ch); err != nil {
		t.Fatal(err)
	}
	expect := func(typ string, within time.Duration) {
		t.Helper()
		select {
		case g := <-got:
			if g != typ {
				t.Fatalf("got %q, want %q", g, typ)
			}
		case <-time.After(within):
			t.Fatalf("subscriber did not get %q within %v", typ, within)
		}
	}
	if err := l.GroupSend(ctxT(t), "g", layer.Message{"type": "first"}); err != nil {
		t.Fatal(err)
	}
	expect("first", 10*time.Second) // the loop now waits in the callback
	if err := l.GroupSend(ctxT(t), "g", layer.Message{"type": "second"}); err != nil {
		t.Fatal(err) // in Redis, in the process key: Redis keeps it through the pause
	}
	raw := srv.client()
	back := srv.pause(2 * time.Second)
	waitAsleep(t, raw)
	close(gate) // the loop's next pop reaches Redis while it sleeps, and outlives its deadline
	backAt := <-back
	expect("second", 10*time.Second)
	t.Logf("delivered %v after Redis woke", time.Since(backAt).Round(time.Millisecond))
}

// waitAsleep waits until c's Redis does not answer a PING within 100 ms.
func waitAsleep(t *testing.T, c rueidis.Client) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		err := c.Do(ctx, c.B().Ping().Build()).Error()
		cancel()
		if err != nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("Redis did not go to sleep")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// The same for Receive on a normal channel (what a Worker does): Redis pauses longer than
// CallTimeout while a Receive's pop is on its way. The Receive fails (the outcome is unknown to it),
// and the message Redis pops when it wakes is put back, for the next Receive.
func TestRedisPausedDuringReceive(t *testing.T) {
	srv := startRedis(t)
	l, err := redislayer.New(redislayer.Config{
		Hosts: []string{srv.url(0)}, CallTimeout: 300 * time.Millisecond, PollTimeout: 100 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	for _, typ := range []string{"primer", "job"} {
		if err := l.Send(ctxT(t), "work", layer.Message{"type": typ}); err != nil {
			t.Fatal(err)
		}
	}
	if m, err := l.Receive(ctxT(t), "work"); err != nil || m.Type() != "primer" { // loads the script
		t.Fatalf("Receive = %v, %v; want the primer", m, err)
	}
	raw := srv.client()
	back := srv.pause(2 * time.Second)
	waitAsleep(t, raw)
	if m, err := l.Receive(context.Background(), "work"); err == nil {
		t.Fatalf("Receive during the pause = %v, want an error", m)
	}
	<-back
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	m, err := l.Receive(ctx, "work")
	if err != nil || m.Type() != "job" {
		t.Fatalf("Receive after the pause = %v, %v; want the job, which Redis kept", m, err)
	}
}
