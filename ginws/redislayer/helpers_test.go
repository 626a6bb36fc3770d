package redislayer_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/redis/rueidis"

	"ginws.dev/ginws/layer"
	"ginws.dev/ginws/redislayer"
	"ginws.dev/ginws/redislayer/redistest"
)

// The shared Redis of the test machine. redislayer tests use DB 1, and DB 2 as a second shard.
const (
	redisAddr = "127.0.0.1:6379"
	db1       = "redis://" + redisAddr + "/1"
	db2       = "redis://" + redisAddr + "/2"
)

// testPrefix returns a key prefix no other test uses.
func testPrefix() string { return fmt.Sprintf("asgitest%08x:", rand.Uint32()) }

// newLayer returns a layer on the given hosts with a fresh prefix, flushed and closed at the end.
func newLayer(t testing.TB, cfg redislayer.Config) *redislayer.Layer {
	t.Helper()
	redistest.Need(t)
	if len(cfg.Hosts) == 0 {
		cfg.Hosts = []string{db1}
	}
	if cfg.Prefix == "" {
		cfg.Prefix = testPrefix()
	}
	l, err := redislayer.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		err := l.Flush(ctx)
		if errors.Is(err, layer.ErrClosed) { // the test closed it: flush with a fresh one
			if f, ferr := redislayer.New(cfg); ferr == nil {
				err = f.Flush(ctx)
				_ = f.Close()
			}
		}
		if err != nil {
			t.Errorf("flush: %v", err)
		}
		_ = l.Close()
	})
	return l
}

// rawClient is a plain rueidis client on one DB, for reading what the layer wrote.
func rawClient(t testing.TB, url string) rueidis.Client {
	t.Helper()
	opt, err := rueidis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	opt.DisableCache = true
	c, err := rueidis.NewClient(opt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}
