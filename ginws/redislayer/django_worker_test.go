package redislayer_test

// Workers across Go and Django (issue 16): a Django view's channel_layer.send reaches a Go
// layer.Worker, a Go Send reaches a worker started with Django's `manage.py runworker` — every kind
// of value intact both ways — and a Go worker and a Django worker on one channel share its
// messages. Debian's Channels 4.0.0 and
// channels_redis 4.0.0; the Django side is ginws/redislayer/djangotest. Each run has a key prefix
// of its own on DB 4, so it runs beside the other Django tests.

import (
	"context"
	"fmt"
	"math/rand/v2"
	"regexp"
	"sync"
	"testing"
	"time"

	"ginws.dev/ginws/layer"
	"ginws.dev/ginws/layertest"
	"ginws.dev/ginws/redislayer"
	"ginws.dev/ginws/redislayer/djangotest"
	"ginws.dev/ginws/redislayer/redistest"
)

func TestDjangoWorkers(t *testing.T) {
	redistest.Need(t)
	if err := djangotest.Check(""); err != nil {
		djangotest.SkipOrFail(t, err.Error())
	}
	prefix := fmt.Sprintf("asgiworkers%08x", rand.Uint32())
	lay := newLayer(t, redislayer.Config{Hosts: []string{djangoRedisURL}, Prefix: prefix, Capacity: 1000})
	o := djangotest.Options{RedisHosts: []string{djangoRedisURL}, Prefix: prefix, Capacity: 1000}
	d := djangotest.Start(t, o)
	djw := djangotest.StartWorker(t, o, "interop-jobs", "thumbnails-generate")
	ctx := testCtx(t)

	// A Django view hands work to a Go worker: every kind of value arrives intact.
	t.Run("DjangoViewToGoWorker", func(t *testing.T) {
		got := make(chan layer.Message, 1)
		w := layer.NewWorker(lay, layer.WorkerConfig{Logger: quietLog, Channels: map[string]layer.Route{
			"go-jobs": {Handlers: layer.Handlers{"interop.job": func(ctx context.Context, msg layer.Message) error {
				got <- msg
				return nil
			}}},
		}})
		layertest.StartWorker(t, w)
		sent := payload("django view")
		sent["type"] = "interop.job"
		if err := d.Send(ctx, "go-jobs", sent); err != nil {
			t.Fatal(err)
		}
		select {
		case msg := <-got:
			norm, err := djangotest.Normalize(msg)
			if err != nil {
				t.Fatal(err)
			}
			expectSame(t, "Go worker (send from a Django view)", norm.(map[string]any), sent)
		case <-time.After(10 * time.Second):
			t.Fatalf("the Go worker got nothing: %+v", w.Stats())
		}
	})

	// Go hands work to Django's runworker (an AsyncConsumer behind ChannelNameRouter): the worker
	// reports what Python decoded, and sends the message back, nested in its reply.
	t.Run("GoSendToDjangoWorker", func(t *testing.T) {
		replies, err := lay.NewChannel(ctx, "replies")
		if err != nil {
			t.Fatal(err)
		}
		sent := payload("go")
		sent["type"] = "interop.job"
		sent["reply_to"] = replies
		if err := lay.Send(ctx, "interop-jobs", sent); err != nil {
			t.Fatal(err)
		}
		rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		reply, err := lay.Receive(rctx, replies)
		if err != nil {
			t.Fatalf("no reply from the Django worker: %v", err)
		}
		if reply.Type() != "interop.handled" || reply["channel"] != "interop-jobs" {
			t.Fatalf("reply %v", reply)
		}
		s, _ := reply.Str("typed")
		seen, err := djangotest.UnmarshalTyped([]byte(s))
		if err != nil {
			t.Fatal(err)
		}
		expectSame(t, "Django worker (send from Go), as Python decoded it", seen.(map[string]any), sent)
		back, ok := reply.Map("message")
		if !ok {
			t.Fatalf(`reply without "message": %v`, reply)
		}
		norm, err := djangotest.Normalize(back)
		if err != nil {
			t.Fatal(err)
		}
		expectSame(t, "the message back from the Django worker, nested", norm.(map[string]any), sent)
	})

	// A Go worker and Django's runworker on one channel share it, and the Django worker (a
	// SyncConsumer) tells the group named in "notify" as the Go one does. Every message is handled,
	// and neither worker handles one twice; but a message may be handled by both: channels_redis
	// keeps the message it pops in a "$inflight" backup until a cleaner task removes it, and every
	// receiver — another Django worker (channels_redis issue #163), or this layer, which restores
	// such backups as channels_redis' receive does — may put it back meanwhile. Go workers alone
	// never write backups (TestWorkersShareAChannelOverRedis).
	t.Run("GoAndDjangoWorkersShareAChannel", func(t *testing.T) {
		var mu sync.Mutex
		byGo := map[int64]int{}
		w := layer.NewWorker(lay, layer.WorkerConfig{Logger: quietLog, Channels: map[string]layer.Route{
			"thumbnails-generate": {Handlers: layer.Handlers{"generate": func(ctx context.Context, msg layer.Message) error {
				id, _ := msg.Int("id")
				mu.Lock()
				byGo[id]++
				mu.Unlock()
				time.Sleep(2 * time.Millisecond) // some work, so that the Django worker gets a share
				return lay.GroupSend(ctx, "user.ada", layer.Message{"type": "thumbnail.done", "id": id, "by": "go"})
			}}},
		}})
		probe, err := lay.NewChannel(ctx, "")
		if err != nil {
			t.Fatal(err)
		}
		if err := lay.GroupAdd(ctx, "user.ada", probe); err != nil {
			t.Fatal(err)
		}
		layertest.StartWorker(t, w)
		const n = 60
		for id := range n {
			if err := lay.Send(ctx, "thumbnails-generate", layer.Message{"type": "generate", "id": id, "notify": "user.ada"}); err != nil {
				t.Fatal(err)
			}
		}
		done := map[int64]int{}
		for len(done) < n {
			rctx, cancel := context.WithTimeout(ctx, 15*time.Second)
			ev, err := lay.Receive(rctx, probe)
			cancel()
			if err != nil {
				t.Fatalf("%d of %d thumbnail.done notifications: %v", len(done), n, err)
			}
			if ev.Type() != "thumbnail.done" {
				t.Fatalf("notification %v", ev)
			}
			id, _ := ev.Int("id")
			done[id]++
		}
		time.Sleep(200 * time.Millisecond) // the last lines of the Django worker
		line := regexp.MustCompile(`(?m)^handled generate id=(\d+)$`)
		byDjango := map[int64]int{}
		for _, m := range line.FindAllStringSubmatch(djw.Output(), -1) {
			var id int64
			fmt.Sscan(m[1], &id)
			byDjango[id]++
		}
		mu.Lock()
		defer mu.Unlock()
		both := 0
		for id := range int64(n) {
			switch {
			case byGo[id] > 1 || byDjango[id] > 1:
				t.Errorf("id=%d handled twice by one worker (Go %d, Django %d)", id, byGo[id], byDjango[id])
			case byGo[id]+byDjango[id] == 0:
				t.Errorf("id=%d was not handled", id)
			case byGo[id]+byDjango[id] == 2:
				both++
			}
		}
		t.Logf("handled by the Go worker: %d, by the Django worker: %d, by both (channels_redis' $inflight backup put back): %d", len(byGo), len(byDjango), both)
		if len(byGo) == 0 || len(byDjango) == 0 {
			t.Errorf("one worker handled everything (Go %d, Django %d): the channel was not shared", len(byGo), len(byDjango))
		}
	})
}
