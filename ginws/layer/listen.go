package layer

import (
	"context"
	"sync"
	"time"
)

// Listener receives the messages of one process-local channel; see Listen.
type Listener struct {
	// Deliver is called once per message. It must be safe for concurrent use, must not block and
	// must not call the layer (see Subscriber); it returns ErrChannelFull when the recipient is
	// full.
	Deliver func(*Envelope) error
	// Wait, for a layer that must be polled, is called before each Receive: it blocks while the
	// recipient has no room — leaving messages in the layer, where its capacity applies — and
	// returns false once the recipient is gone (stop does not interrupt it). Optional: without it
	// the poller receives again at once.
	Wait func() bool
	// OnError is told of each failed Receive of a polled layer; the poller retries 100 ms later.
	// Optional.
	OnError func(error)
}

// Listen delivers the messages of channel to ln.Deliver: through Subscribe when the layer is a
// Subscriber (no goroutine, the usual case), and otherwise from one goroutine that calls Receive
// until stop is called. stop ends the delivery and, for a polled layer, waits for that goroutine to
// return; call it once.
func Listen(l Layer, channel string, ln Listener) (stop func(), err error) {
	if sub, ok := l.(Subscriber); ok {
		return sub.Subscribe(channel, ln.Deliver)
	}
	if err := ValidateChannelName(channel); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		poll(ctx, l, channel, ln)
	}()
	return func() { cancel(); wg.Wait() }, nil
}

// retryAfter is how long the poller of a channel waits after a failed Receive.
const retryAfter = 100 * time.Millisecond

func poll(ctx context.Context, l Layer, channel string, ln Listener) {
	for {
		if ln.Wait != nil && !ln.Wait() {
			return
		}
		msg, err := l.Receive(ctx, channel)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			if ln.OnError != nil {
				ln.OnError(err)
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(retryAfter):
			}
			continue
		}
		_ = ln.Deliver(NewEnvelope(msg, ""))
	}
}
