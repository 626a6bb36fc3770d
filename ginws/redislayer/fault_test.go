package redislayer_test

import (
	"context"
	"fmt"
	"testing"
	"time"

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
		if d := time.Since(start); d > 3*time.Second {
			t.Errorf("%s took %v with Redis down, want at most CallTimeout", call.name, d)
		}
	}
	time.Sleep(300 * time.Millisecond) // the loop notices and backs off
	if l.Stats().LoopErrors == 0 {
		t.Error("the receive loop did not report Redis going away")
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
