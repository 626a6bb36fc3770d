// Command worker serves a named channel of a channel layer, as Django Channels' `manage.py
// runworker thumbnails-generate` does: anything that shares its Redis — the broadcast example's
// POST /thumbnails/:user, another Go process, or a Django view calling
// channel_layer.send("thumbnails-generate", {...}) — hands it work.
//
//	go run ./examples/worker -layer redis://127.0.0.1:6379/0 -channel thumbnails-generate
//
// For each {"type": "generate", "id": 42} it "generates the thumbnail" (waits -work, 0 by default)
// and prints one line to stdout:
//
//	handled generate id=42
//
// When the message names a group in "notify" (the broadcast example puts the user's group there),
// the worker then group-sends {"type": "thumbnail.done", "id": 42} to it, so that the user's
// sockets hear that the work is done. Logs go to stderr.
//
// Run it several times on one channel to share the work: each message is handled by one of them.
// Delivery is at most once, as in Channels. SIGINT or SIGTERM stops it: it takes no more
// messages, finishes the one in hand and exits.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"ginws.dev/examples/internal/layerflag"
	"ginws.dev/ginws/layer"
)

// Options configure a thumbnail worker.
type Options struct {
	Channel     string        // the named channel to serve
	Concurrency int           // messages handled at once (layer.Route.Concurrency)
	Work        time.Duration // how long "generating" one thumbnail takes
	Out         io.Writer     // receives one line per handled message
	Logger      *slog.Logger
}

// NewWorker returns the thumbnail worker on lay.
func NewWorker(lay layer.Layer, o Options) *layer.Worker {
	var mu sync.Mutex // one line per Write, also with Concurrency > 1
	generate := func(ctx context.Context, msg layer.Message) error {
		id, ok := msg.Int("id")
		if !ok {
			return fmt.Errorf(`"id" must be an integer, got %#v`, msg["id"])
		}
		if o.Work > 0 {
			select {
			case <-time.After(o.Work): // the thumbnail is being made
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		mu.Lock()
		_, err := fmt.Fprintf(o.Out, "handled generate id=%d\n", id)
		mu.Unlock()
		if err != nil {
			return err
		}
		if group, ok := msg.Str("notify"); ok && group != "" {
			return lay.GroupSend(ctx, group, layer.Message{"type": "thumbnail.done", "id": id})
		}
		return nil
	}
	return layer.NewWorker(lay, layer.WorkerConfig{
		Logger: o.Logger,
		Channels: map[string]layer.Route{
			o.Channel: {Concurrency: o.Concurrency, Handlers: layer.Handlers{"generate": generate}},
		},
	})
}

func main() {
	layerFlag := flag.String("layer", "redis://127.0.0.1:6379/0", layerflag.Usage)
	channel := flag.String("channel", "thumbnails-generate", "the named `channel` to serve")
	concurrency := flag.Int("concurrency", 1, "messages handled at once (1 keeps their order)")
	work := flag.Duration("work", 0, "how long generating one thumbnail takes (a stand-in for real work)")
	flag.Parse()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	if err := run(*layerFlag, Options{Channel: *channel, Concurrency: *concurrency, Work: *work, Out: os.Stdout, Logger: log}); err != nil {
		fmt.Fprintln(os.Stderr, "worker:", err)
		os.Exit(1)
	}
}

func run(layerURL string, o Options) (err error) {
	if err := layer.ValidateChannelName(o.Channel); err != nil || layer.IsProcessLocal(o.Channel) {
		return fmt.Errorf("-channel %q: want a named channel such as thumbnails-generate", o.Channel)
	}
	if o.Concurrency < 1 {
		return errors.New("-concurrency: want 1 or more")
	}
	lay, closeLayer, err := layerflag.Parse(layerURL, o.Logger, nil)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := closeLayer(); err == nil {
			err = cerr
		}
	}()
	w := NewWorker(lay, o)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	o.Logger.Info("worker serving", "channel", o.Channel, "concurrency", o.Concurrency)
	err = w.Run(ctx)
	st := w.Stats()
	o.Logger.Info("worker stopped", "handled", st.Handled, "failed", st.Failed+st.Panicked, "unhandled", st.Unhandled)
	return err
}
