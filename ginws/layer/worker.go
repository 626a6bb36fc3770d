package layer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Handler handles one message of a worker's channel. msg must be treated as read-only: a group send
// may hand one map to several channels of the process. An error is logged and counted; the message
// is not delivered again (see Worker).
type Handler func(ctx context.Context, msg Message) error

// Handlers maps event types to handlers, with the rules of HandlerName: "image.resize" and
// "image_resize" name one handler, and a type may not start with '_' or '.'.
type Handlers map[string]Handler

// Route is what a Worker does with one named channel: an entry of Channels' ChannelNameRouter.
type Route struct {
	// Handlers picks the handler of each message by its "type". Required: at least one.
	Handlers Handlers
	// Concurrency is how many messages of the channel are handled at once. With 1, messages are
	// handled one after another, in the order the layer hands them over, as Channels' runworker
	// does. Optional. Default 1.
	Concurrency int
}

// WorkerConfig configures a Worker. A zero field means its default; NewWorker refuses the rest with
// a *ConfigError naming the field.
type WorkerConfig struct {
	// Channels maps each channel the worker serves to its Route, as ChannelNameRouter does. The
	// names are normal channel names ("thumbnails-generate"): a process-local name (with '!') is
	// refused, since it belongs to one process and cannot be shared by workers. Required: at least
	// one.
	Channels map[string]Route
	// Logger receives the reports of failed and panicking handlers, messages with no handler, and
	// failed receives. Optional. Default slog.Default().
	Logger *slog.Logger
	// StopTimeout is how long the handlers still running when Run's context ends may go on before
	// their context is canceled (Run still waits for them to return). Optional. Default 30 s.
	// Negative: their context is never canceled.
	StopTimeout time.Duration
}

// DefaultStopTimeout is the default of WorkerConfig.StopTimeout.
const DefaultStopTimeout = 30 * time.Second

// ErrNoHandler is wrapped by the error Dispatch returns for a message whose type has no handler.
var ErrNoHandler = errors.New("layer: no handler for the event type")

// Worker serves named channels of a layer: it receives their messages and hands each to the
// handler its "type" names — Channels' runworker with a ChannelNameRouter, without any web
// framework. Several Workers, in one process or in many (Go or Django, on one Redis), may serve
// one channel: each message is taken by one of them and handled once.
//
// # Delivery
//
// At most once, as in Channels. A message is taken from the layer when a handler is free to run it
// (never earlier: a Worker holds at most Route.Concurrency messages of a channel, so workers that
// share a channel share it by how fast they handle), and is not delivered again if its handler
// fails, panics or the process dies. Retries are the handler's: try again inside it, or Send the
// message back to the channel with an attempt count. A message with no "type", a malformed type
// or a type with no handler is logged and dropped, and a panic is logged with its stack; the
// Worker goes on in every case.
//
// # Concurrency
//
// The handlers of one channel run at most Route.Concurrency at a time; with the default of 1 they
// run one after another, in the order the layer hands messages over (the order they were sent,
// for one worker alone on the channel). Handlers of different channels run concurrently. A handler
// needs no lock for state of its own channel when Concurrency is 1, and must be safe for
// concurrent use otherwise.
//
// Run may be called once. Dispatch and Stats are safe for concurrent use, also while Run runs.
//
// # Stopping
//
// When Run's context ends, the Worker stops taking messages (a receive in progress is canceled;
// the layers hand back nothing they popped for it) and waits for the handlers that are running.
// Those run with a context that carries the values of Run's but is canceled only
// WorkerConfig.StopTimeout after Run's context ended, so that a handler finishes its work and its
// last sends. Run returns once every handler has returned.
type Worker struct {
	layer       Layer
	log         *slog.Logger
	stopTimeout time.Duration
	routes      map[string]*route
	order       []string // channel names, sorted

	started atomic.Bool
	st      workerCounters
}

type route struct {
	channel     string
	concurrency int
	handlers    map[string]Handler // by HandlerName
}

type workerCounters struct {
	received, handled, failed, panicked, unhandled, receiveErrors atomic.Uint64
	running                                                       atomic.Int64
}

// WorkerStats is a snapshot of a Worker's counters.
type WorkerStats struct {
	Received      uint64 // messages taken from the layer
	Handled       uint64 // handlers that returned nil
	Failed        uint64 // handlers that returned an error
	Panicked      uint64 // handlers that panicked
	Unhandled     uint64 // messages with no type, a malformed type or no handler for it
	ReceiveErrors uint64 // failed receives (the layer unreachable...), each retried
	Running       int    // handlers running now
}

// NewWorker returns a Worker that serves cfg.Channels of l. It panics with a *ConfigError when l
// is nil or cfg has an invalid field.
func NewWorker(l Layer, cfg WorkerConfig) *Worker {
	w, err := newWorker(l, cfg)
	if err != nil {
		panic(err)
	}
	return w
}

func newWorker(l Layer, cfg WorkerConfig) (*Worker, error) {
	const field = "layer.WorkerConfig."
	if l == nil {
		return nil, &ConfigError{Field: "layer.NewWorker(l)", Value: nil, Rule: "must be a channel layer"}
	}
	if len(cfg.Channels) == 0 {
		return nil, &ConfigError{Field: field + "Channels", Value: "{}", Rule: "must name at least one channel"}
	}
	w := &Worker{
		layer:       l,
		log:         cfg.Logger,
		stopTimeout: cfg.StopTimeout,
		routes:      make(map[string]*route, len(cfg.Channels)),
	}
	if w.log == nil {
		w.log = slog.Default()
	}
	if w.stopTimeout == 0 {
		w.stopTimeout = DefaultStopTimeout
	}
	for name := range cfg.Channels {
		w.order = append(w.order, name)
	}
	slices.Sort(w.order) // the first bad entry reported is always the same one
	for _, name := range w.order {
		rt := cfg.Channels[name]
		f := field + "Channels[" + strconv.Quote(name) + "]"
		if err := ValidateChannelName(name); err != nil {
			return nil, &ConfigError{Field: field + "Channels", Value: strconv.Quote(name), Rule: "must be a valid channel name: " + err.Error()}
		}
		if IsProcessLocal(name) {
			return nil, &ConfigError{Field: field + "Channels", Value: strconv.Quote(name),
				Rule: "must be a normal channel name: a process-local ('!') channel belongs to one process and cannot be served by workers"}
		}
		if rt.Concurrency < 0 {
			return nil, &ConfigError{Field: f + ".Concurrency", Value: rt.Concurrency, Rule: "must not be negative (zero means the default, 1)"}
		}
		if len(rt.Handlers) == 0 {
			return nil, &ConfigError{Field: f + ".Handlers", Value: "{}", Rule: "must have at least one handler"}
		}
		r := &route{channel: name, concurrency: max(rt.Concurrency, 1), handlers: make(map[string]Handler, len(rt.Handlers))}
		types := make([]string, 0, len(rt.Handlers))
		for typ := range rt.Handlers {
			types = append(types, typ)
		}
		slices.Sort(types)
		for _, typ := range types {
			hf := f + ".Handlers[" + strconv.Quote(typ) + "]"
			hn, err := HandlerName(typ)
			if err != nil {
				return nil, &ConfigError{Field: hf, Value: strconv.Quote(typ), Rule: "must be a valid event type: " + err.Error()}
			}
			if rt.Handlers[typ] == nil {
				return nil, &ConfigError{Field: hf, Value: nil, Rule: "must be a function"}
			}
			if _, dup := r.handlers[hn]; dup {
				return nil, &ConfigError{Field: hf, Value: strconv.Quote(typ), Rule: "names the same handler as another type ('.' and '_' are the same in event types)"}
			}
			r.handlers[hn] = rt.Handlers[typ]
		}
		w.routes[name] = r
	}
	return w, nil
}

// Stats returns the Worker's counters.
func (w *Worker) Stats() WorkerStats {
	return WorkerStats{
		Received:      w.st.received.Load(),
		Handled:       w.st.handled.Load(),
		Failed:        w.st.failed.Load(),
		Panicked:      w.st.panicked.Load(),
		Unhandled:     w.st.unhandled.Load(),
		ReceiveErrors: w.st.receiveErrors.Load(),
		Running:       int(w.st.running.Load()),
	}
}

var errRunTwice = errors.New("layer: Worker.Run called more than once")

// Run serves the Worker's channels until ctx ends, then waits for the running handlers (see
// Stopping on Worker) and returns nil. It returns ErrClosed, also after waiting for the handlers,
// when the layer is closed under it. A failed receive (the layer's server unreachable, say) is
// logged and retried, from 100 ms doubling to 5 s; it does not end Run.
func (w *Worker) Run(ctx context.Context) error {
	if !w.started.CompareAndSwap(false, true) {
		return errRunTwice
	}
	rctx, stop := context.WithCancelCause(ctx)
	defer stop(nil)
	hctx, cancelHandlers := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelHandlers()
	var loops, handlers sync.WaitGroup
	for _, name := range w.order {
		r := w.routes[name]
		loops.Go(func() { w.serve(rctx, stop, hctx, r, &handlers) })
	}
	<-rctx.Done()
	if w.stopTimeout > 0 {
		t := time.AfterFunc(w.stopTimeout, cancelHandlers)
		defer t.Stop()
	}
	loops.Wait() // after this, no handler starts: handlers.Add happens before handlers.Wait
	handlers.Wait()
	if errors.Is(context.Cause(rctx), ErrClosed) {
		return ErrClosed
	}
	return nil
}

// Backoff of a channel's receive after failures.
const (
	minReceiveBackoff = 100 * time.Millisecond
	maxReceiveBackoff = 5 * time.Second
)

// serve is the receive loop of one channel: it takes a message only when one of the route's
// handler slots is free, and runs the handler on a goroutine of its own that gives the slot back.
// (Bounded like errgroup.SetLimit: at most Concurrency such goroutines at a time.)
func (w *Worker) serve(ctx context.Context, stop context.CancelCauseFunc, hctx context.Context, r *route, running *sync.WaitGroup) {
	slots := make(chan struct{}, r.concurrency)
	var backoff time.Duration
	for {
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			return
		}
		msg, err := w.layer.Receive(ctx, r.channel)
		if err != nil {
			<-slots
			if ctx.Err() != nil {
				return
			}
			if errors.Is(err, ErrClosed) {
				stop(ErrClosed) // no channel of this layer can be received any more
				return
			}
			w.st.receiveErrors.Add(1)
			backoff = min(max(2*backoff, minReceiveBackoff), maxReceiveBackoff)
			w.log.Warn("layer: worker cannot receive; retrying", "channel", r.channel, "error", err, "retry_in", backoff)
			t := time.NewTimer(backoff)
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
			continue
		}
		backoff = 0
		w.st.received.Add(1)
		running.Add(1)
		go func() {
			defer running.Done()
			defer func() { <-slots }()
			_ = w.handle(hctx, r, msg)
		}()
	}
}

// Dispatch hands msg to the handler of channel on the calling goroutine, as Run would hand over a
// message received on that channel, and returns the handler's error: the way to test handlers
// without a layer (Channels' ApplicationCommunicator). A message the worker would drop — no type,
// a malformed type, no handler (ErrNoHandler) — and a handler panic are errors too; all are also
// logged and counted as under Run. Dispatch does not count against Route.Concurrency.
func (w *Worker) Dispatch(ctx context.Context, channel string, msg Message) error {
	r := w.routes[channel]
	if r == nil {
		return fmt.Errorf("layer: the worker does not serve channel %q", channel)
	}
	return w.handle(ctx, r, msg)
}

// handle runs the handler of msg, containing panics; it logs and counts every outcome.
func (w *Worker) handle(ctx context.Context, r *route, msg Message) (err error) {
	typ := msg.Type()
	h, err := r.handler(typ)
	if err != nil {
		w.st.unhandled.Add(1)
		w.log.Warn("layer: worker dropped a message it cannot dispatch", "channel", r.channel, "type", typ, "error", err)
		return err
	}
	w.st.running.Add(1)
	defer w.st.running.Add(-1)
	defer func() {
		if p := recover(); p != nil {
			w.st.panicked.Add(1)
			w.log.Error("layer: worker handler panicked; its message is dropped, the worker goes on",
				"channel", r.channel, "type", typ, "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			err = fmt.Errorf("layer: handler for %s on channel %q panicked: %v", quoteType(typ), r.channel, p)
		}
	}()
	if err = h(ctx, msg); err != nil {
		w.st.failed.Add(1)
		w.log.Error("layer: worker handler failed; its message is not delivered again", "channel", r.channel, "type", typ, "error", err)
		return err
	}
	w.st.handled.Add(1)
	return nil
}

// handler finds the handler of an event type.
func (r *route) handler(typ string) (Handler, error) {
	name, err := HandlerName(typ)
	if err != nil {
		return nil, err
	}
	if h := r.handlers[name]; h != nil {
		return h, nil
	}
	return nil, fmt.Errorf("%w %s on channel %q", ErrNoHandler, quoteType(typ), r.channel)
}
