package redislayer_test

import (
	"context"
	"runtime"
	"sync/atomic"
	"testing"

	"ginws.dev/ginws/layer"
	"ginws.dev/ginws/redislayer"
)

// A group send through Redis allocates per send (the script call, one decode, one Envelope), not
// per local member: the receive loop hands the one Envelope to every subscriber from lists it
// reuses batch after batch. Measured as the growth of allocations per send between a group of 20
// and one of 100 subscribed channels.
func TestGroupSendAllocatesPerSendNotPerMember(t *testing.T) {
	if testing.Short() {
		t.Skip("short mode")
	}
	l := newLayer(t, redislayer.Config{})
	ctx := context.Background()
	var delivered atomic.Int64
	for i := range 100 {
		ch, err := l.NewChannel(ctx, "")
		if err != nil {
			t.Fatal(err)
		}
		unsub, err := l.Subscribe(ch, func(*layer.Envelope) error { delivered.Add(1); return nil })
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(unsub)
		for _, g := range []string{"all", map[bool]string{true: "small", false: "big"}[i < 20]} {
			if err := l.GroupAdd(ctx, g, ch); err != nil {
				t.Fatal(err)
			}
		}
	}
	msg := layer.Message{"type": "chat.message", "m": "hello, room"}
	var want int64
	sender := func(group string, n int64) func() {
		return func() {
			if err := l.GroupSend(ctx, group, msg); err != nil {
				t.Fatal(err)
			}
			want += n
			for delivered.Load() < want {
				runtime.Gosched()
			}
		}
	}
	toSmall, toAll := sender("small", 20), sender("all", 100)
	for range 50 {
		toSmall()
		toAll()
	}
	perSmall := testing.AllocsPerRun(100, toSmall)
	perAll := testing.AllocsPerRun(100, toAll)
	perMember := (perAll - perSmall) / 80
	t.Logf("allocations per group send: %.1f to 20 members, %.1f to 100: %.3f per member", perSmall, perAll, perMember)
	if perMember > 0.05 {
		t.Fatalf("%.3f allocations per member, want none", perMember)
	}
}
