package ginws_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"testing"
	"time"

	"ginws.dev/ginws"
	"ginws.dev/ginws/layer"
	"ginws.dev/ginws/wstest"
)

func echoText(ctx context.Context, c *funcConsumer, f ginws.ClientMessage) error {
	return c.SendText(string(f.Data))
}

// A client over its message budget is closed with 1008 "message rate exceeded", after the
// messages within the budget were handled.
func TestMessageRateCloses(t *testing.T) {
	t.Parallel()
	a := newApp(t, ginws.Config{Limits: ginws.Limits{Messages: ginws.Rate{PerSecond: 0.001, Burst: 5}}},
		consumer(funcConsumer{receive: echoText}))
	ctx := testCtx(t)
	c := a.ts.Communicator("/ws/x")
	c.MustConnect(ctx)
	for i := range 20 {
		if err := c.SendText(ctx, fmt.Sprint(i)); err != nil {
			break // the server may close before all are written
		}
	}
	for i := range 5 {
		if got := recvText(t, c); got != fmt.Sprint(i) {
			t.Fatalf("echo %d: %q", i, got)
		}
	}
	code, reason, err := c.WaitClosed(ctx)
	if err != nil || code != ginws.ClosePolicyViolation || reason != "message rate exceeded" {
		t.Fatalf("closed with %d %q (%v), want 1008 \"message rate exceeded\"", code, reason, err)
	}
	if n := a.srv.Stats().MessagesLimited; n < 1 {
		t.Fatalf("Stats.MessagesLimited = %d", n)
	}
	a.logs.waitFor(t, "over its message rate; closing")
}

// With DropMessages the messages over the budget are dropped and counted; the connection lives on.
func TestMessageRateDrops(t *testing.T) {
	t.Parallel()
	names := make(chan string, 1)
	a := newApp(t, ginws.Config{Limits: ginws.Limits{Messages: ginws.Rate{PerSecond: 0.001, Burst: 3}, DropMessages: true}},
		consumer(funcConsumer{
			receive: echoText,
			connect: func(ctx context.Context, c *funcConsumer) error {
				names <- c.ChannelName()
				return c.Accept()
			},
			events: func(c *funcConsumer) ginws.Events {
				return ginws.Events{"note": func(ctx context.Context, ev layer.Message) error { return c.SendText("note") }}
			},
		}))
	ctx := testCtx(t)
	c := a.ts.Communicator("/ws/x")
	c.MustConnect(ctx)
	for i := range 10 {
		if err := c.SendText(ctx, fmt.Sprint(i)); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 3 {
		if got := recvText(t, c); got != fmt.Sprint(i) {
			t.Fatalf("echo %d: %q", i, got)
		}
	}
	// The note is sent after the ten messages were read (a ping would be too, but the reader
	// handles messages in order, so by the time the note comes back all ten were seen).
	if err := a.srv.Layer().Send(ctx, <-names, layer.Message{"type": "note"}); err != nil {
		t.Fatal(err)
	}
	if got := recvText(t, c); got != "note" {
		t.Fatalf("after the drops: %q, want the note (the dropped messages must not be echoed)", got)
	}
	waitStat(t, func() bool { return a.srv.Stats().MessagesLimited == 7 }, func() string {
		return fmt.Sprintf("Stats.MessagesLimited = %d, want 7", a.srv.Stats().MessagesLimited)
	})
	a.logs.waitFor(t, "dropping its messages over the budget")
}

// A flooding client is closed; the clients of another room go on getting every message.
func TestFloodDoesNotStopOtherRooms(t *testing.T) {
	t.Parallel()
	relay := funcConsumer{
		groups: func(c *funcConsumer) []string { return []string{"room_" + c.Scope().Param("room")} },
		receive: func(ctx context.Context, c *funcConsumer, f ginws.ClientMessage) error {
			return c.GroupSend(ctx, "room_"+c.Scope().Param("room"), layer.Message{"type": "say", "text": string(f.Data)})
		},
	}
	relay.events = func(c *funcConsumer) ginws.Events {
		return ginws.Events{"say": func(ctx context.Context, ev layer.Message) error {
			s, _ := ev.Str("text")
			return c.SendText(s)
		}}
	}
	a := newApp(t, ginws.Config{Limits: ginws.Limits{Messages: ginws.Rate{PerSecond: 100, Burst: 100}}}, consumer(relay))
	ctx := testCtx(t)
	flooder := a.ts.Communicator("/ws/flood")
	flooder.MustConnect(ctx)
	readers := []*wstest.Communicator{a.ts.Communicator("/ws/calm"), a.ts.Communicator("/ws/calm")}
	for _, r := range readers {
		r.MustConnect(ctx)
	}
	done := make(chan error, 1)
	go func() {
		for i := 0; ; i++ {
			if err := flooder.SendText(ctx, "spam"); err != nil {
				done <- nil // closed by the server
				return
			}
			if i == 100_000 {
				done <- errors.New("the flooder was never limited")
				return
			}
		}
	}()
	for i := range 20 {
		if err := readers[i%2].SendText(ctx, fmt.Sprint(i)); err != nil {
			t.Fatal(err)
		}
		for _, r := range readers {
			if got := recvText(t, r); got != fmt.Sprint(i) {
				t.Fatalf("calm room got %q, want %d", got, i)
			}
		}
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	code, _, _ := flooder.WaitClosed(ctx)
	if code != ginws.ClosePolicyViolation {
		t.Fatalf("the flooder was closed with %d, want 1008", code)
	}
}

func waitStat(t *testing.T, ok func() bool, msg func() string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatal(msg())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func connectStatus(t *testing.T, c *wstest.Communicator) wstest.ConnectResult {
	t.Helper()
	res, err := c.Connect(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// Concurrent sockets per address and per user are capped with 429 before the upgrade; a socket
// that ends frees its place.
func TestConnectionCaps(t *testing.T) {
	t.Parallel()
	a := newApp(t, ginws.Config{
		User:   func(s *ginws.Scope) string { return s.Header().Get("X-User") },
		Limits: ginws.Limits{ConnsPerIP: 3, ConnsPerUser: 2},
	}, consumer(funcConsumer{}))
	ctx := testCtx(t)
	u1a := a.ts.Communicator("/ws/x", wstest.Header("X-User", "u1"))
	u1a.MustConnect(ctx)
	a.ts.Communicator("/ws/x", wstest.Header("X-User", "u1")).MustConnect(ctx)
	if res := connectStatus(t, a.ts.Communicator("/ws/x", wstest.Header("X-User", "u1"))); res.Status != http.StatusTooManyRequests {
		t.Fatalf("u1's third socket: HTTP %d, want 429", res.Status)
	}
	anon := a.ts.Communicator("/ws/x") // not counted per user; the address's third
	anon.MustConnect(ctx)
	if res := connectStatus(t, a.ts.Communicator("/ws/x", wstest.Header("X-User", "u2"))); res.Status != http.StatusTooManyRequests {
		t.Fatalf("the address's fourth socket: HTTP %d, want 429", res.Status)
	}
	if err := anon.Disconnect(ctx); err != nil {
		t.Fatal(err)
	}
	if err := u1a.Disconnect(ctx); err != nil {
		t.Fatal(err)
	}
	waitStat(t, func() bool { return a.srv.Stats().Open == 1 }, func() string { return "the sockets did not end" })
	a.ts.Communicator("/ws/x", wstest.Header("X-User", "u1")).MustConnect(ctx)
	a.ts.Communicator("/ws/x", wstest.Header("X-User", "u2")).MustConnect(ctx)
	if n := a.srv.Stats().HandshakesLimited; n != 2 {
		t.Fatalf("Stats.HandshakesLimited = %d, want 2", n)
	}
	a.logs.waitFor(t, "user=u1")
}

// Handshakes per second per address are limited, with Retry-After.
func TestHandshakeRate(t *testing.T) {
	t.Parallel()
	a := newApp(t, ginws.Config{Limits: ginws.Limits{HandshakesPerIP: ginws.Rate{PerSecond: 0.1, Burst: 2}}}, consumer(funcConsumer{}))
	ctx := testCtx(t)
	for range 2 {
		c := a.ts.Communicator("/ws/x")
		c.MustConnect(ctx)
		if err := c.Disconnect(ctx); err != nil {
			t.Fatal(err)
		}
	}
	res := connectStatus(t, a.ts.Communicator("/ws/x"))
	if res.Status != http.StatusTooManyRequests || res.Header.Get("Retry-After") == "" {
		t.Fatalf("third handshake: HTTP %d, Retry-After %q; want 429 with Retry-After", res.Status, res.Header.Get("Retry-After"))
	}
}

func TestLimitsConfig(t *testing.T) {
	t.Parallel()
	for _, l := range []ginws.Limits{
		{Messages: ginws.Rate{PerSecond: -1}},
		{HandshakesPerIP: ginws.Rate{PerSecond: 1, Burst: -1}},
		{ConnsPerUser: -1},
	} {
		func() {
			defer func() {
				var ce *ginws.ConfigError
				if err, _ := recover().(error); !errors.As(err, &ce) {
					t.Errorf("New with %+v did not panic with a *ConfigError", l)
				}
			}()
			ginws.New(ginws.Config{Limits: l})
		}()
	}
}
