package redislayer

import (
	"context"
	"fmt"
	"testing"
	"time"

	"ginws.dev/ginws/layer"
)

// BenchmarkResync measures re-adding 10 000 memberships (1 000 subscribed channels in 10 groups
// each, over 100 groups) after a fault: what a keeper writes before deliveries resume.
func BenchmarkResync(b *testing.B) {
	l := internalLayer(b, Config{})
	ctx := context.Background()
	for i := 0; i < 1000; i++ {
		ch, _ := l.NewChannel(ctx, "")
		if _, err := l.Subscribe(ch, func(*layer.Envelope) error { return nil }); err != nil {
			b.Fatal(err)
		}
		for g := 0; g < 10; g++ {
			if err := l.GroupAdd(ctx, fmt.Sprintf("room%d", (i+g*7)%100), ch); err != nil {
				b.Fatal(err)
			}
		}
	}
	if n := l.Stats().Memberships; n != 10000 {
		b.Fatalf("%d memberships", n)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		n, err := l.resync(cctx, 0)
		cancel()
		if err != nil || n != 10000 {
			b.Fatal(n, err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/10000, "ns/membership")
}
