package layer

import (
	"context"
	"sync"
	"sync/atomic"
)

// Layer is a channel layer, the Django Channels abstraction that lets connections, HTTP handlers and
// background jobs talk to each other by channel name and by group.
//
// Every method may be called from any goroutine. Methods that can block take a context first and
// return its error when it is done. Names are checked with ValidateChannelName and
// ValidateGroupName; a bad one is a *NameError.
//
// Semantics shared by every backend (the layertest package checks them):
//   - Send delivers to one channel; a channel holds at most its capacity (default 100) of messages
//     and Send to a full channel returns ErrChannelFull.
//   - GroupSend delivers to every member of a group; it never fails because a member is full —
//     that member misses the message and the layer counts the drop.
//   - An unreceived message expires (default 60 s); a group membership expires (default 86 400 s)
//     unless it is added again.
//   - Messages to one channel are received in the order they were sent.
type Layer interface {
	// NewChannel returns a new, unique, process-local channel name ("<prefix>...!<id>"). An empty
	// prefix means "specific", as in Channels.
	NewChannel(ctx context.Context, prefix string) (string, error)
	// Send sends msg to channel.
	Send(ctx context.Context, channel string, msg Message) error
	// Receive waits for the next message on channel.
	Receive(ctx context.Context, channel string) (Message, error)
	// GroupAdd adds channel to group (again, refreshing its expiry, if it is already a member).
	GroupAdd(ctx context.Context, group, channel string) error
	// GroupDiscard removes channel from group; removing a non-member is not an error.
	GroupDiscard(ctx context.Context, group, channel string) error
	// GroupSend sends msg to every channel in group.
	GroupSend(ctx context.Context, group string, msg Message) error
	// Flush empties every channel and group of the layer (for tests).
	Flush(ctx context.Context) error
}

// Subscriber is implemented by layers that can push the messages of a process-local channel to a
// callback instead of being polled with Receive. The connection runtime uses it so that an idle
// connection needs no goroutine waiting on the layer; with a layer that lacks it, each connection
// runs one goroutine calling Receive.
//
// deliver is called once per message; messages sent one after another are delivered in that
// order, but deliveries from concurrent sends may run concurrently, so deliver must be safe for
// concurrent use. It must not block and must not call back into the layer. It returns ErrChannelFull when the recipient cannot
// take the message: a layer that delivers synchronously (the in-memory one) returns that error
// from Send; GroupSend, and layers that deliver from a receive loop, count a drop.
// While a channel is subscribed, Receive on it is an error.
type Subscriber interface {
	Subscribe(channel string, deliver func(*Envelope) error) (unsubscribe func(), err error)
}

// CapacityReporter is implemented by layers whose channels have a capacity; the runtime bounds a
// connection's queue of pending events by it (default 100).
type CapacityReporter interface {
	Capacity(channel string) int
}

// Envelope carries one layer message to the recipients of this process. A layer that pushes
// messages (Subscriber) makes one Envelope per message it delivers and hands that same Envelope to
// every local recipient, so that work that depends only on the message — encoding it for the wire,
// say — is done once for all of them (see Memo). Recipients must treat Message as read-only.
type Envelope struct {
	Message Message
	// Position is the message's place in its group's history (see Resumer), set by the layer for
	// groups with history; zero otherwise.
	Position Position

	typ   string // Message.Type(), looked up once for all recipients
	group string // the group it was sent to, where the layer knows it (for logs)

	first atomic.Pointer[memo] // the first memo: read without the lock
	mu    sync.Mutex
	memos []memo // one per key
}

type memo struct {
	key *MemoKey
	v   any
	err error
}

// MemoKey names one kind of work done once per Envelope (see Envelope.Memo). Declare one per kind,
// at package level or in a long-lived value, and pass its address.
type MemoKey struct{ _ byte }

// NewEnvelope wraps msg for delivery; group is the group it was sent to, or "" when the layer does
// not know (a message sent to the channel, or one whose group the wire format does not carry).
func NewEnvelope(msg Message, group string) *Envelope {
	return &Envelope{Message: msg, typ: msg.Type(), group: group}
}

// Type returns the message's "type", looked up once for every recipient.
func (e *Envelope) Type() string {
	if e.typ == "" && e.Message != nil {
		return e.Message.Type() // an Envelope built without NewEnvelope
	}
	return e.typ
}

// Group returns the group the message was sent to, or "" when the layer does not know it.
func (e *Envelope) Group() string { return e.group }

// Peek returns what Memo computed for key, and ok true, or ok false if Memo has not finished
// computing it. It never waits for a computation under way. Safe for concurrent use.
func (e *Envelope) Peek(key *MemoKey) (v any, err error, ok bool) {
	if f := e.first.Load(); f != nil {
		if f.key == key {
			return f.v, f.err, true
		}
	} else {
		return nil, nil, false // no memo yet
	}
	if !e.mu.TryLock() {
		return nil, nil, false
	}
	defer e.mu.Unlock()
	for _, m := range e.memos {
		if m.key == key {
			return m.v, m.err, true
		}
	}
	return nil, nil, false
}

// Memo returns what compute returns for this envelope under key, computing it on the first call
// only: concurrent and later calls with the same key get the same result. compute runs at most once per key, under a lock of this
// envelope only; it must not call Memo on the same envelope. Safe for concurrent use.
func (e *Envelope) Memo(key *MemoKey, compute func() (any, error)) (any, error) {
	if f := e.first.Load(); f != nil && f.key == key {
		return f.v, f.err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, m := range e.memos {
		if m.key == key {
			return m.v, m.err
		}
	}
	v, err := compute()
	e.memos = append(e.memos, memo{key: key, v: v, err: err})
	if len(e.memos) == 1 {
		e.first.Store(&memo{key: key, v: v, err: err})
	}
	return v, err
}
