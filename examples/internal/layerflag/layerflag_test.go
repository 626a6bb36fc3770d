package layerflag_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"go.uber.org/goleak"

	"ginws.dev/examples/internal/layerflag"
	"ginws.dev/ginws/layer"
	"ginws.dev/ginws/redislayer"
	"ginws.dev/ginws/redislayer/redistest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestMemory(t *testing.T) {
	for _, s := range []string{"", "memory"} {
		l, closeFn, err := layerflag.Parse(s, slog.Default(), nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := l.(*layer.Memory); !ok {
			t.Errorf("Parse(%q) = %T, want *layer.Memory", s, l)
		}
		if err := closeFn(); err != nil {
			t.Fatal(err)
		}
	}
}

func TestBad(t *testing.T) {
	for _, s := range []string{"memcached://x", "redis://a/0?prefix=x,redis://b/0?prefix=y", "::", "redis://a/0?linger=soon", "redis://a/0?capacity=0", "redis://a/0?capacity=many"} {
		if _, _, err := layerflag.Parse(s, slog.Default(), nil); err == nil {
			t.Errorf("Parse(%q) succeeded", s)
		}
	}
}

func TestRedis(t *testing.T) {
	redistest.Need(t)
	var adjusted redislayer.Config
	l, closeFn, err := layerflag.Parse("redis://127.0.0.1:6379/1?prefix=layerflagtest&linger=1ms&capacity=7,redis://127.0.0.1:6379/2", slog.Default(), nil,
		func(cfg *redislayer.Config) { cfg.PresenceTTL = 5 * time.Second; adjusted = *cfg })
	if err != nil {
		t.Fatal(err)
	}
	defer closeFn()
	if _, ok := l.(*redislayer.Layer); !ok {
		t.Fatalf("got %T, want *redislayer.Layer", l)
	}
	if adjusted.Capacity != 7 || adjusted.Prefix != "layerflagtest" || len(adjusted.Hosts) != 2 {
		t.Errorf("the adjust function saw %+v", adjusted)
	}
	if got := l.(*redislayer.Layer).Capacity("x"); got != 7 {
		t.Errorf("Capacity = %d, want 7 (?capacity=7)", got)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	defer l.Flush(ctx)
	ch, err := l.NewChannel(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Send(ctx, ch, layer.Message{"type": "hello"}); err != nil {
		t.Fatal(err)
	}
	m, err := l.Receive(ctx, ch)
	if err != nil || m.Type() != "hello" {
		t.Fatalf("Receive = %v, %v", m, err)
	}
}
