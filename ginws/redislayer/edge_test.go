package redislayer_test

import (
	"context"
	"errors"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"ginws.dev/ginws/layer"
	"ginws.dev/ginws/redislayer"
)

var shardSets = map[string][]string{"OneHost": {db1}, "TwoShards": {db1, db2}}

// Receives whose deadlines end while their pop is in flight lose nothing: every message is received
// exactly once or is still in Redis, and a key re-created by a put-back still expires.
func TestReceiveDeadlinesLoseNothing(t *testing.T) {
	t.Parallel()
	for name, hosts := range shardSets {
		t.Run(name, func(t *testing.T) {
			prefix := testPrefix()
			l := newLayer(t, redislayer.Config{Hosts: hosts, Prefix: prefix, Capacity: 5000})
			const n, receivers, tries = 1000, 8, 200
			ch := "deadlines"
			for i := 0; i < n; i++ {
				if err := l.Send(ctxT(t), ch, layer.Message{"type": "m", "i": i}); err != nil {
					t.Fatal(err)
				}
			}
			var mu sync.Mutex
			seen := make(map[int64]int)
			record := func(m layer.Message) {
				i, _ := m.Int("i")
				mu.Lock()
				seen[i]++
				mu.Unlock()
			}
			var wg sync.WaitGroup
			for r := 0; r < receivers; r++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for k := 0; k < tries; k++ {
						d := time.Duration(50+rand.IntN(1500)) * time.Microsecond
						ctx, cancel := context.WithTimeout(context.Background(), d)
						m, err := l.Receive(ctx, ch)
						cancel()
						if err == nil {
							record(m)
						} else if !errors.Is(err, context.DeadlineExceeded) {
							t.Errorf("Receive: %v", err)
							return
						}
					}
				}()
			}
			wg.Wait()
			for _, h := range hosts { // a key a put-back re-created must still expire
				c := rawClient(t, h)
				ttl, err := c.Do(ctxT(t), c.B().Ttl().Key(prefix+ch).Build()).AsInt64()
				if err != nil {
					t.Fatal(err)
				}
				if ttl == -1 {
					t.Errorf("%s: key %s has no expiry", h, prefix+ch)
				}
			}
			// Drain what is left. A receive whose deadline passed while Redis was popping for it
			// puts the popped messages back when the reply comes (late_pop.go), which on a busy
			// machine can take a while: wait for each message up to 3 s, not for a quiet 300 ms.
			for len(seen) < n {
				ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
				m, err := l.Receive(ctx, ch)
				cancel()
				if errors.Is(err, context.DeadlineExceeded) {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				record(m)
			}
			for i := int64(0); i < n; i++ {
				if seen[i] != 1 {
					t.Errorf("message %d received %d times", i, seen[i])
				}
			}
		})
	}
}

// With two shards, normal-channel sends alternate between the shards as channels_redis' do (so a
// channels_redis receiver, which waits on one shard, is not starved), the capacity bounds the
// channel as a whole, and a Go Receive still gets one sender's messages in order.
func TestNormalChannelRoundRobin(t *testing.T) {
	t.Parallel()
	prefix := testPrefix()
	l := newLayer(t, redislayer.Config{Hosts: []string{db1, db2}, Prefix: prefix, Capacity: 10})
	ch := "spread"
	for i := 0; i < 10; i++ {
		if err := l.Send(ctxT(t), ch, layer.Message{"type": "m", "i": i}); err != nil {
			t.Fatal(err)
		}
	}
	for _, h := range []string{db1, db2} {
		c := rawClient(t, h)
		if n, err := c.Do(ctxT(t), c.B().Zcard().Key(prefix+ch).Build()).AsInt64(); err != nil || n != 5 {
			t.Errorf("%s holds %d messages (%v), want 5 of 10", h, n, err)
		}
	}
	if err := l.Send(ctxT(t), ch, layer.Message{"type": "m"}); !errors.Is(err, layer.ErrChannelFull) {
		t.Fatalf("11th send to a channel of capacity 10 over two shards: %v, want ErrChannelFull", err)
	}
	for i := 0; i < 10; i++ {
		m, err := l.Receive(ctxT(t), ch)
		if err != nil {
			t.Fatal(err)
		}
		if got, _ := m.Int("i"); got != int64(i) {
			t.Fatalf("receive %d got message %d", i, got)
		}
	}
}

// Strings that are not UTF-8 are refused before anything is written: channels_redis decodes str
// strictly and would fail in Django's receive after popping the message.
func TestInvalidUTF8Refused(t *testing.T) {
	t.Parallel()
	l := newLayer(t, redislayer.Config{})
	for _, msg := range []layer.Message{
		{"type": "m", "text": "ok\xff"},
		{"type": "m", "bad\xfekey": 1},
		{"type": "m", "list": []any{"fine", "\xc3"}},
		{"type": "m", "nested": map[string]any{"k\xff": "v"}},
		{"type": "m", "strs": []string{"\xff"}},
	} {
		err := l.Send(ctxT(t), "utf8", msg)
		if !errors.Is(err, redislayer.ErrUnsupportedValue) || !strings.Contains(err.Error(), "UTF-8") {
			t.Errorf("Send(%q) = %v, want ErrUnsupportedValue naming UTF-8", msg, err)
		}
		if err := l.GroupSend(ctxT(t), "g", msg); !errors.Is(err, redislayer.ErrUnsupportedValue) {
			t.Errorf("GroupSend(%q) = %v, want ErrUnsupportedValue", msg, err)
		}
	}
	if err := l.Send(ctxT(t), "utf8", layer.Message{"type": "m", "bin": []byte("\xff")}); err != nil {
		t.Errorf("[]byte must pass: %v", err)
	}
}

// A channel whose subscriber left keeps discarding its late messages after Expiry (memberships
// live GroupExpiry): nothing is buffered for it.
func TestUnsubscribedStaysDiscarded(t *testing.T) {
	t.Parallel()
	l := newLayer(t, redislayer.Config{Expiry: time.Second})
	ch, err := l.NewChannel(ctxT(t), "")
	if err != nil {
		t.Fatal(err)
	}
	unsubscribe, err := l.Subscribe(ch, func(*layer.Envelope) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	unsubscribe()
	time.Sleep(2500 * time.Millisecond) // longer than Expiry
	for i := 0; i < 2; i++ {            // the first also lets the receive loop sweep
		if err := l.Send(ctxT(t), ch, layer.Message{"type": "late"}); err != nil {
			t.Fatal(err)
		}
		waitFor(t, func() bool { return l.Stats().Received == uint64(i+1) })
	}
	if st := l.Stats(); st.LocalBuffers != 0 {
		t.Fatalf("%d local buffers for a channel unsubscribed before; want its late messages discarded", st.LocalBuffers)
	}
}

// Close racing normal-channel Receives loses no message: each is received or still in Redis, and
// the receives end with ErrLayerClosed. Sends racing Close report ErrLayerClosed.
func TestCloseRacingReceive(t *testing.T) {
	t.Parallel()
	for name, hosts := range shardSets {
		for round := 0; round < 10; round++ { // the window is narrow: try it several times
			t.Run(name, func(t *testing.T) { closeRacingReceive(t, hosts) })
		}
	}
}

func closeRacingReceive(t *testing.T, hosts []string) {
	prefix := testPrefix()
	l := newLayer(t, redislayer.Config{Hosts: hosts, Prefix: prefix, Capacity: 5000})
	const n = 400
	ch := "closing"
	for i := 0; i < n; i++ {
		if err := l.Send(ctxT(t), ch, layer.Message{"type": "m", "i": i}); err != nil {
			t.Fatal(err)
		}
	}
	var mu sync.Mutex
	got := 0
	var wg sync.WaitGroup
	for r := 0; r < 16; r++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				_, err := l.Receive(ctxT(t), ch)
				if err != nil {
					if !errors.Is(err, layer.ErrClosed) {
						t.Errorf("Receive during Close: %v", err)
					}
					return
				}
				mu.Lock()
				got++
				mu.Unlock()
			}
		}()
	}
	wg.Add(1)
	go func() { // sends to another channel racing Close
		defer wg.Done()
		for {
			err := l.Send(ctxT(t), "other", layer.Message{"type": "x"})
			if err != nil {
				if !errors.Is(err, layer.ErrClosed) {
					t.Errorf("Send during Close: %v", err)
				}
				return
			}
		}
	}()
	waitFor(t, func() bool { mu.Lock(); defer mu.Unlock(); return got >= n/4 })
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	left := int64(0)
	for _, h := range hosts {
		c := rawClient(t, h)
		k, err := c.Do(ctxT(t), c.B().Zcard().Key(prefix+ch).Build()).AsInt64()
		if err != nil {
			t.Fatal(err)
		}
		left += k
	}
	if int64(got)+left != n {
		t.Fatalf("received %d + left in Redis %d != sent %d", got, left, n)
	}
}

// A Receive on an empty normal channel returns when its context is canceled or the layer closes,
// without waiting for its blocking pop's PollTimeout.
func TestReceiveWokenEarly(t *testing.T) {
	t.Parallel()
	l := newLayer(t, redislayer.Config{PollTimeout: 30 * time.Second})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 2)
	go func() { _, err := l.Receive(ctx, "idle"); done <- err }()
	time.Sleep(200 * time.Millisecond)
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("canceled Receive: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("canceled Receive still blocked in its 30 s pop")
	}
	go func() { _, err := l.Receive(ctxT(t), "idle"); done <- err }()
	time.Sleep(200 * time.Millisecond)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if !errors.Is(err, layer.ErrClosed) {
			t.Fatalf("Receive at Close: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not wake a Receive blocked in its 30 s pop")
	}
}

// Invalid configuration is refused by New with a *layer.ConfigError naming the field — a malformed
// ChannelCapacity pattern is not a rule silently ignored, a negative duration not a default.
func TestConfigRefusesInvalidFields(t *testing.T) {
	t.Parallel()
	neg := -time.Second
	cases := map[string]redislayer.Config{
		"redislayer.Config.Capacity":                    {Capacity: -1},
		"redislayer.Config.ProcessCapacity":             {ProcessCapacity: -1},
		"redislayer.Config.ReceiveBatch":                {ReceiveBatch: -1},
		"redislayer.Config.Expiry":                      {Expiry: neg},
		"redislayer.Config.GroupExpiry":                 {GroupExpiry: neg},
		"redislayer.Config.DialTimeout":                 {DialTimeout: neg},
		"redislayer.Config.CallTimeout":                 {CallTimeout: neg},
		"redislayer.Config.PollTimeout":                 {PollTimeout: neg},
		"redislayer.Config.MaxBackoff":                  {MaxBackoff: neg},
		"redislayer.Config.ReceiveLinger":               {ReceiveLinger: neg},
		"redislayer.Config.ChannelCapacity[0].Pattern":  {ChannelCapacity: []layer.CapacityRule{{Pattern: "chat.[", Capacity: 5}}},
		"redislayer.Config.ChannelCapacity[0].Capacity": {ChannelCapacity: []layer.CapacityRule{{Pattern: "chat.*", Capacity: -5}}},
		"redislayer.Config.Hosts":                       {Hosts: []string{"http://nope"}},
	}
	for field, cfg := range cases {
		_, err := redislayer.New(cfg)
		var ce *layer.ConfigError
		if !errors.As(err, &ce) || ce.Field != field {
			t.Errorf("%s: New returned %v, want a *layer.ConfigError naming the field", field, err)
		}
	}
	if _, err := redislayer.New(redislayer.Config{ChannelCapacity: []layer.CapacityRule{{Pattern: "chat.[", Capacity: 5}}}); err == nil || !strings.Contains(err.Error(), "chat.[") {
		t.Fatalf("the error must name the pattern: %v", err)
	}
}

// waitFor polls cond until it holds, failing the test after 10 s.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(10 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatal("condition not reached in 10 s")
		}
	}
}
