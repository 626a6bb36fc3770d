package redislayer

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"ginws.dev/ginws/layer"
	"ginws.dev/ginws/redislayer/redistest"
)

// The receive loop's fallback for Redis before 7 (no BZMPOP): BZPOPMIN, then ZPOPMIN for the rest.
func TestPopWithoutBzmpop(t *testing.T) {
	t.Parallel()
	redistest.Need(t)
	l, err := New(Config{Hosts: []string{"redis://127.0.0.1:6379/1"}, Prefix: fmt.Sprintf("asgitest%08x:", rand.Uint32())})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	defer l.Close()
	defer l.Flush(ctx)
	l.noBzmpop.Store(true)
	ch, _ := l.NewChannel(ctx, "")
	for i := 0; i < 3; i++ {
		if err := l.Send(ctx, ch, layer.Message{"type": "m", "i": i}); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < 3; i++ {
		m, err := l.Receive(ctx, ch)
		if err != nil {
			t.Fatal(err)
		}
		if n, _ := m.Int("i"); n != int64(i) {
			t.Fatalf("message %d has i=%d", i, n)
		}
	}
}
