package layer_test

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"testing"
	"time"

	"ginws.dev/ginws/layer"
)

// TestMemoryGroupGrowsAndShrinks walks a group through the shapes the memory layer keeps it in —
// one member, several, one again, none — and checks who receives a group send at each step,
// that a membership refreshed in either shape stays, and that expiry removes members in both.
func TestMemoryGroupGrowsAndShrinks(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	l := layer.NewMemory(layer.MemoryConfig{GroupExpiry: 3 * time.Second})
	t.Cleanup(func() { _ = l.Close() })
	got := map[string][]string{}
	names := make([]string, 3)
	for i := range names {
		name, err := l.NewChannel(ctx, "")
		if err != nil {
			t.Fatal(err)
		}
		names[i] = name
		stop, err := l.Subscribe(name, func(e *layer.Envelope) error {
			got[name] = append(got[name], e.Message["text"].(string)) // deliver runs in GroupSend's goroutine
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(stop)
	}
	send := func(text string, want ...int) {
		t.Helper()
		if err := l.GroupSend(ctx, "g", layer.Message{"type": "m", "text": text}); err != nil {
			t.Fatal(err)
		}
		for i, name := range names {
			if has := slices.Contains(got[name], text); has != slices.Contains(want, i) {
				t.Fatalf("%s: member %d received it: %v, want members %v", text, i, has, want)
			}
		}
		if groups := l.Stats().Groups; groups != min(len(want), 1) {
			t.Fatalf("%s: Stats().Groups = %d with members %v", text, groups, want)
		}
	}
	add := func(i int) {
		if err := l.GroupAdd(ctx, "g", names[i]); err != nil {
			t.Fatal(err)
		}
	}
	discard := func(i int) {
		if err := l.GroupDiscard(ctx, "g", names[i]); err != nil {
			t.Fatal(err)
		}
	}
	send("empty")
	add(0)
	add(0) // a refresh, not a second member
	send("one", 0)
	discard(1) // not a member: nothing changes
	send("one again", 0)
	add(1)
	add(2)
	send("three", 0, 1, 2)
	discard(0)
	send("two", 1, 2)
	discard(2)
	send("back to one", 1)
	add(0)
	send("two again", 0, 1)
	discard(0)
	discard(1)
	send("none")

	// Expiry: one member, then two members of which one was refreshed. Sleeps only ever run
	// long: the refreshed member has 1.9 s of margin (3 s of expiry, 1.1 s slept since its
	// refresh), which a busy machine's oversleep does not use up (a 1 s expiry with 600 ms
	// sleeps left 400 ms, and one run lost it).
	add(0)
	time.Sleep(3100 * time.Millisecond)
	send("one expired")
	add(0)
	add(1)
	time.Sleep(2000 * time.Millisecond)
	add(1)
	time.Sleep(1100 * time.Millisecond)
	send("one of two expired", 1)
	if st := l.Stats(); st.Expired != 2 {
		t.Fatalf("Stats().Expired = %d, want 2", st.Expired)
	}
}

// BenchmarkMemoryOneMemberGroup reports the heap one one-member group costs in the memory layer
// (B/group, with the membership and the group's entry in the layer's table), the case of a user's
// or a session's group that every socket joins. The channels exist before, as a connection's do.
// Run it with -benchtime 1x; b.N is not the number of groups.
func BenchmarkMemoryOneMemberGroup(b *testing.B) {
	const groups = 10000
	ctx := context.Background()
	for b.Loop() {
		l := layer.NewMemory(layer.MemoryConfig{})
		names := make([]string, groups)
		groupNames := make([]string, groups)
		for i := range names {
			names[i], _ = l.NewChannel(ctx, "")
			groupNames[i] = fmt.Sprintf("user.%032x", i)
			stop, err := l.Subscribe(names[i], func(*layer.Envelope) error { return nil })
			if err != nil {
				b.Fatal(err)
			}
			defer stop()
		}
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		for i, name := range names {
			if err := l.GroupAdd(ctx, groupNames[i], name); err != nil {
				b.Fatal(err)
			}
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(int64(after.HeapAlloc)-int64(before.HeapAlloc))/groups, "B/group")
		runtime.KeepAlive(l)
		runtime.KeepAlive(names)
		runtime.KeepAlive(groupNames)
	}
}
