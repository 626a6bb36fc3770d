package layer_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"

	"ginws.dev/ginws/layer"
)

// A worker serves a named channel, as `manage.py runworker thumbnails-generate` does: anything in
// the process (an HTTP view, a consumer) or in another process on the same Redis hands it work
// with Send. With redislayer, the same code serves a Django app's channel.
func ExampleWorker() {
	lay := layer.NewMemory(layer.MemoryConfig{}) // redislayer.New(...) to share it between processes
	ctx, stop := context.WithCancel(context.Background())
	defer stop()

	w := layer.NewWorker(lay, layer.WorkerConfig{
		Channels: map[string]layer.Route{ // Channels' ChannelNameRouter
			"thumbnails-generate": {Handlers: layer.Handlers{
				"generate": func(ctx context.Context, msg layer.Message) error {
					id, _ := msg.Int("id")
					fmt.Printf("handled generate id=%d\n", id)
					if id == 3 {
						stop() // Run stops taking messages and returns once this handler has returned
					}
					return nil
				},
			}},
		},
	})
	for id := 1; id <= 3; id++ {
		_ = lay.Send(ctx, "thumbnails-generate", layer.Message{"type": "generate", "id": id})
	}
	err := w.Run(ctx) // one message at a time, in order (Route.Concurrency: 1)
	fmt.Println("stopped:", err)
	// Output:
	// handled generate id=1
	// handled generate id=2
	// handled generate id=3
	// stopped: <nil>
}

// Dispatch runs a handler as the worker would, without a layer or a goroutine: the way to unit-test
// handlers. Unknown types, failures and panics come back as errors (and are logged, as under Run).
func ExampleWorker_Dispatch() {
	w := layer.NewWorker(layer.NewMemory(layer.MemoryConfig{}), layer.WorkerConfig{
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Channels: map[string]layer.Route{"thumbnails-generate": {Handlers: layer.Handlers{
			"thumbnail.generate": func(ctx context.Context, msg layer.Message) error {
				if _, ok := msg.Int("id"); !ok {
					return errors.New(`"id" must be an integer`)
				}
				return nil
			},
		}}},
	})
	ctx := context.Background()
	fmt.Println(w.Dispatch(ctx, "thumbnails-generate", layer.Message{"type": "thumbnail_generate", "id": 42}))
	fmt.Println(w.Dispatch(ctx, "thumbnails-generate", layer.Message{"type": "thumbnail.generate"}))
	err := w.Dispatch(ctx, "thumbnails-generate", layer.Message{"type": "thumbnail.delete"})
	fmt.Println(errors.Is(err, layer.ErrNoHandler), err)
	// Output:
	// <nil>
	// "id" must be an integer
	// true layer: no handler for the event type "thumbnail.delete" on channel "thumbnails-generate"
}

// A worker delivers each message at most once, as Channels does: retrying is the handler's choice.
// This one sends a failed job back to its channel with an attempt count, up to three attempts.
func ExampleHandlers_retry() {
	lay := layer.NewMemory(layer.MemoryConfig{})
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	flaky := 2 // the first two attempts fail

	var generate layer.Handler = func(ctx context.Context, msg layer.Message) error {
		attempt, _ := msg.Int("attempt")
		if flaky > 0 {
			flaky--
			fmt.Println("attempt", attempt, "failed")
			if attempt < 3 {
				retry := msg.Clone() // msg is read-only
				retry["attempt"] = attempt + 1
				return lay.Send(ctx, "thumbnails-generate", retry)
			}
			return errors.New("giving up") // logged; the message is dropped
		}
		fmt.Println("attempt", attempt, "succeeded")
		stop()
		return nil
	}
	w := layer.NewWorker(lay, layer.WorkerConfig{Channels: map[string]layer.Route{
		"thumbnails-generate": {Handlers: layer.Handlers{"generate": generate}},
	}})
	_ = lay.Send(ctx, "thumbnails-generate", layer.Message{"type": "generate", "id": 7, "attempt": 1})
	_ = w.Run(ctx)
	// Output:
	// attempt 1 failed
	// attempt 2 failed
	// attempt 3 succeeded
}

// Route.Concurrency lets a channel's handlers run side by side, for work that waits (on a disk, a
// network, another service) rather than computes. Order is then not kept, and handlers must be
// safe for concurrent use. Several worker processes on one Redis channel add up the same way.
func ExampleRoute_concurrency() {
	lay := layer.NewMemory(layer.MemoryConfig{})
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	var allRunning sync.WaitGroup // each handler waits here until all four run at once
	allRunning.Add(4)
	var done atomic.Int32

	w := layer.NewWorker(lay, layer.WorkerConfig{Channels: map[string]layer.Route{
		"emails-send": {Concurrency: 4, Handlers: layer.Handlers{
			"send": func(ctx context.Context, msg layer.Message) error {
				allRunning.Done()
				allRunning.Wait() // with Concurrency 1 this would never return
				if done.Add(1) == 4 {
					stop()
				}
				return nil
			},
		}},
	}})
	for i := range 4 {
		_ = lay.Send(ctx, "emails-send", layer.Message{"type": "send", "to": i})
	}
	_ = w.Run(ctx)
	fmt.Println(w.Stats().Handled, "handlers ran side by side")
	// Output: 4 handlers ran side by side
}
