package redislayer_test

import (
	"context"
	"fmt"
	"testing"

	"ginws.dev/ginws/layer"
	"ginws.dev/ginws/redislayer"
)

// benchGroup makes a group of members channels spread over procs fake processes (keys), as a room
// whose clients are connected to procs servers.
func benchGroup(b *testing.B, l *redislayer.Layer, group string, members, procs int) {
	ctx := context.Background()
	for i := 0; i < members; i++ {
		if err := l.GroupAdd(ctx, group, fmt.Sprintf("specific.proc%d!c%d", i%procs, i)); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkGroupSend measures one GroupSend (one script call) to a room of 100 members on two
// processes. Nobody pops the process keys, so a large capacity keeps the sends from being dropped.
func BenchmarkGroupSend(b *testing.B) {
	l := newLayer(b, redislayer.Config{Capacity: 1 << 30})
	benchGroup(b, l, "room", 100, 2)
	msg := layer.Message{"type": "chat.message", "message": "hello, room"}
	ctx := context.Background()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := l.GroupSend(ctx, "room", msg); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)*100/b.Elapsed().Seconds(), "deliveries/s")
}

// BenchmarkGroupSendParallel: concurrent group sends to 10 rooms share round trips (rueidis
// pipelines them automatically).
func BenchmarkGroupSendParallel(b *testing.B) {
	l := newLayer(b, redislayer.Config{Capacity: 1 << 30})
	for r := 0; r < 10; r++ {
		benchGroup(b, l, fmt.Sprintf("room%d", r), 100, 2)
	}
	msg := layer.Message{"type": "chat.message", "message": "hello, room"}
	ctx := context.Background()
	b.SetParallelism(8)
	b.ResetTimer()
	var n int
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			if err := l.GroupSend(ctx, fmt.Sprintf("room%d", i%10), msg); err != nil {
				b.Error(err)
				return
			}
			i++
		}
	})
	n = b.N
	b.StopTimer()
	b.ReportMetric(float64(n)*100/b.Elapsed().Seconds(), "deliveries/s")
}

// BenchmarkGroupSendSharded is the two-call path (two shards).
func BenchmarkGroupSendSharded(b *testing.B) {
	l := newLayer(b, redislayer.Config{Capacity: 1 << 30, Hosts: []string{db1, db2}})
	benchGroup(b, l, "room", 100, 2)
	msg := layer.Message{"type": "chat.message", "message": "hello, room"}
	ctx := context.Background()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := l.GroupSend(ctx, "room", msg); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkGroupAdd measures GroupAdd of this process's own channels, which the layer also records
// (to re-add them after a Redis fault and refresh them before GroupExpiry).
func BenchmarkGroupAdd(b *testing.B) {
	l := newLayer(b, redislayer.Config{})
	ch, err := l.NewChannel(context.Background(), "")
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := l.GroupAdd(ctx, fmt.Sprintf("room%d", i%100), ch); err != nil {
			b.Fatal(err)
		}
	}
}
