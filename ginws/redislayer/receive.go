package redislayer

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"ginws.dev/ginws/layer"
)

// Receiving. All process-local channels of this Layer with one prefix share one Redis key,
// "<Prefix><prefix>.<client>!". One loop per such key and per shard pops it with BZPOPMIN (and
// drains what else is waiting with ZPOPMIN), decodes each message once, and hands one Envelope to
// every local recipient named in "__asgi_channel__": a subscriber's callback, or the buffer a
// Receive call reads. Normal (non-'!') channels are received directly from their own key.

// local is the state of this process's channels. Guarded by Layer.mu: the loops deliver under the
// read lock, so once unsubscribe returns, its callback is never called again.
type local struct {
	subs   map[string]*subscription
	bufs   map[string]*localBuf
	gone   goneSet   // unsubscribed channels; their late messages are discarded
	sweep  time.Time // next sweep of expired buffered messages
	closed chan struct{}
}

type subscription struct {
	deliver func(*layer.Envelope) error
}

// localBuf holds messages for a process-local channel that has no subscriber, for Receive.
// Bounded by the channel's capacity: the oldest message is dropped, as channels_redis does.
type localBuf struct {
	msgs    []bufMsg
	ready   chan struct{} // closed when a message arrives; nil when nobody waits
	waiters int
}

type bufMsg struct {
	msg     layer.Message
	expires time.Time
}

func newLocal() local {
	return local{
		subs: make(map[string]*subscription), bufs: make(map[string]*localBuf),
		gone: goneSet{at: make(map[string]time.Time)}, closed: make(chan struct{}),
	}
}

func (lc *local) closeAll() {
	close(lc.closed)
}

func (lc *local) flush() {
	for name, b := range lc.bufs {
		clear(b.msgs)
		b.msgs = b.msgs[:0]
		if b.waiters == 0 {
			delete(lc.bufs, name)
		}
	}
}

// Subscribe pushes the messages of a process-local channel made by this Layer's NewChannel to
// deliver, from the receive loop, until unsubscribe is called. Messages already buffered for the
// channel are delivered first. deliver runs on the receive loop: it must not block.
func (l *Layer) Subscribe(channel string, deliver func(*layer.Envelope) error) (func(), error) {
	keyName, err := l.ownChannel(channel)
	if err != nil {
		return nil, err
	}
	if deliver == nil {
		return nil, errors.New("redislayer: Subscribe needs a deliver function")
	}
	sub := &subscription{deliver: deliver}
	l.mu.Lock()
	if l.closed.Load() {
		l.mu.Unlock()
		return nil, layer.ErrClosed
	}
	if l.subs[channel] != nil {
		l.mu.Unlock()
		return nil, fmt.Errorf("redislayer: channel %s already has a subscriber", channel)
	}
	l.subs[channel] = sub
	l.gone.remove(channel)
	if b := l.bufs[channel]; b != nil {
		now := time.Now()
		for _, m := range b.msgs {
			l.deliverOne(sub, layer.NewEnvelope(m.msg, ""), now, m.expires)
		}
		clear(b.msgs)
		b.msgs = b.msgs[:0]
		if b.waiters == 0 {
			delete(l.bufs, channel)
		}
	}
	l.startLoops(keyName)
	l.mu.Unlock()
	return func() {
		l.mu.Lock()
		if l.subs[channel] == sub {
			delete(l.subs, channel)
			// Group messages already on their way to a closed connection are discarded, not
			// buffered for a Receive that will never come.
			l.gone.add(channel, time.Now(), l.cfg.GroupExpiry)
			// The process no longer vouches for the channel's memberships: if its GroupDiscards
			// failed, what Redis holds expires as in Channels instead of being refreshed.
			l.members.dropChannel(channel)
		}
		l.mu.Unlock()
	}, nil
}

func (l *Layer) deliverOne(sub *subscription, env *layer.Envelope, now, expires time.Time) {
	switch {
	case !now.Before(expires):
		l.st.expired.Add(1)
	case sub.deliver(env) != nil:
		l.st.dropped.Add(1)
	default:
		l.st.delivered.Add(1)
	}
}

// ownChannel checks that channel is a process-local channel of this Layer and returns its key name.
func (l *Layer) ownChannel(channel string) (string, error) {
	if err := layer.ValidateChannelName(channel); err != nil {
		return "", err
	}
	keyName := layer.NonLocalName(channel)
	if !layer.IsProcessLocal(channel) || !strings.HasSuffix(keyName, "."+l.clientPrefix+"!") {
		return "", fmt.Errorf("%w: %s", errForeignChannel, channel)
	}
	return keyName, nil
}

// Receive waits for the next message on channel. For a process-local channel the message comes
// from the receive loop; for a normal channel, Receive pops the channel's key itself (BZPOPMIN, in
// slices of PollTimeout so that ctx is honoured; a message popped after ctx ended is put back).
func (l *Layer) Receive(ctx context.Context, channel string) (layer.Message, error) {
	if err := layer.ValidateChannelName(channel); err != nil {
		return nil, err
	}
	if l.closed.Load() {
		return nil, layer.ErrClosed
	}
	if !layer.IsProcessLocal(channel) {
		return l.receiveDirect(ctx, channel)
	}
	keyName, err := l.ownChannel(channel)
	if err != nil {
		return nil, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.startLoops(keyName)
	l.gone.remove(channel)
	l.members.touch(channel, time.Now()) // a channel read with Receive lives on while it is read
	for {
		if l.closed.Load() {
			return nil, layer.ErrClosed
		}
		if l.subs[channel] != nil {
			return nil, fmt.Errorf("redislayer: channel %s is consumed by a subscriber; Receive cannot be used on it", channel)
		}
		b := l.bufs[channel]
		if b == nil {
			b = &localBuf{}
			l.bufs[channel] = b
		}
		now := time.Now()
		for len(b.msgs) > 0 {
			m := b.msgs[0]
			b.msgs[0] = bufMsg{}
			b.msgs = b.msgs[1:]
			if now.Before(m.expires) {
				if len(b.msgs) == 0 && b.waiters == 0 {
					delete(l.bufs, channel)
				}
				l.st.delivered.Add(1)
				return m.msg, nil
			}
			l.st.expired.Add(1)
		}
		if b.ready == nil {
			b.ready = make(chan struct{})
		}
		ready := b.ready
		b.waiters++
		l.mu.Unlock()
		select {
		case <-ready:
		case <-ctx.Done():
		case <-l.local.closed:
		}
		l.mu.Lock()
		b.waiters--
		if err := ctx.Err(); err != nil {
			if len(b.msgs) == 0 && b.waiters == 0 && l.bufs[channel] == b {
				delete(l.bufs, channel)
			}
			return nil, err
		}
	}
}
