package ginws

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"runtime/debug"
	"unsafe"

	"ginws.dev/ginws/layer"
)

// Relays. RelayJSON's handlers send what build makes of an event, encoded once per Envelope for
// every connection of the process. Their events also skip the connection's dispatch when nothing
// is ahead of them (deliverRelayLocked): they are queued for the client as frames still to be
// encoded, and the pump encodes (once per Envelope, shared) and writes them in one go. A handler
// would have done exactly that, in the same order, so the consumer cannot tell the difference;
// what it saves per delivery is the event queue, the handler call and a second trip through c.mu.

// relay is the shared identity of a RelayJSON handler: the frames it builds are cached per Envelope
// under it.
type relay struct {
	key   layer.MemoKey // the frames it builds are kept per Envelope under &key
	sse   layer.MemoKey // the server-sent events it builds, likewise
	build func(ev layer.Message, pos layer.Position) (any, error)
}

func (r *relay) encode(ev layer.Message, pos layer.Position) (msg *PreparedMessage, err error) {
	defer func() {
		if p := recover(); p != nil {
			msg, err = nil, &panicError{value: p, stack: debug.Stack()}
		}
	}()
	payload, err := r.payload(ev, pos)
	if err != nil {
		if errors.Is(err, ErrClosed) || errors.As(err, new(*TooLargeError)) {
			// build's own failure, not the connection's state or a frame's size: it closes the
			// connection like any other (Conn.failed would pass these over).
			err = fmt.Errorf("ginws: RelayJSON build failed: %v", err)
		}
		return nil, err
	}
	return newPrepared(opText, payload), nil
}

// payload is build's result for ev, encoded as JSON.
func (r *relay) payload(ev layer.Message, pos layer.Position) ([]byte, error) {
	v, err := r.build(ev, pos)
	if err != nil {
		return nil, err
	}
	return json.Marshal(v)
}

// prepared returns env's frame for this relay: encoded by the first connection that needs it,
// shared by the others.
func (r *relay) prepared(env *layer.Envelope) (*PreparedMessage, error) {
	v, err := env.Memo(&r.key, func() (any, error) { return r.encode(env.Message, env.Position) })
	msg, _ := v.(*PreparedMessage)
	return msg, err
}

// panicError is a panic in a RelayJSON build function, turned into an error: the frame is shared
// by connections whose pumps encode it, so the panic is kept with the Envelope's memo and every
// one of them closes with 1011, as a panicking handler would.
type panicError struct {
	value any
	stack []byte
}

func (e *panicError) Error() string {
	return fmt.Sprintf("ginws: RelayJSON build panicked: %v", e.value)
}

var errRelayOutside = errors.New("ginws: a RelayJSON handler was called outside a ginws connection")

// RelayJSON returns an event handler that sends build(event), encoded as JSON, to the client. When
// one group send reaches many connections of this process, build runs and the JSON is encoded
// (and, for connections with WithCompression, compressed) once, and every connection writes the
// same bytes — the encode-once broadcast of the fast WebSocket servers, with Channels'
// handler-per-type model (a connection with Compression.ContextTakeover compresses the JSON
// itself). Declare the handler once, at package level, so all connections share
// it:
//
//	var chatMessage = ginws.RelayJSON(func(ev layer.Message) (any, error) {
//		return gin.H{"message": ev["message"], "user": ev["user"]}, nil
//	})
//
//	func (c *Chat) Events() ginws.Events { return ginws.Events{"chat.message": chatMessage} }
//
// build must depend only on the event (not on the connection) and must not modify it. It may
// also take the event's position in its group's history (see Conn.GroupAddSince), to send it as
// an id the client resumes from: func(ev layer.Message, pos layer.Position) (any, error).
//
// A connection's events for a relay handler cost less than other events: when no client message
// or other event is waiting before one, it goes to the client's outbound queue at once, and
// build runs when the frame is written, on a goroutine of the connection's (never under a lock of
// the layer or of the connection). The order of everything the connection sends is the same as if
// the handler had run. An error or a panic in build closes the connections it was for with 1011,
// and is logged, as a failing handler's.
func RelayJSON[B func(ev layer.Message) (any, error) | func(ev layer.Message, pos layer.Position) (any, error)](build B) EventHandler {
	r := &relay{}
	switch b := any(build).(type) {
	case func(layer.Message) (any, error):
		r.build = func(ev layer.Message, _ layer.Position) (any, error) { return b(ev) }
	case func(layer.Message, layer.Position) (any, error):
		r.build = b
	}
	return relayHandler(r)
}

// relayHandler is the handler RelayJSON returns. It is not generic, so that every relay handler
// has the same code (relayOf recognizes them by it); not inlined, for the same reason (an inlined
// copy of the closure would be code of its own).
//
//go:noinline
func relayHandler(r *relay) EventHandler {
	return func(ctx context.Context, ev layer.Message) error {
		if p, ok := ctx.(*relayProbe); ok {
			p.r = r
			return nil
		}
		c := connFromContext(ctx)
		if c == nil {
			if st := streamFromContext(ctx); st != nil {
				return r.stream(st, ev)
			}
			return errRelayOutside
		}
		var msg *PreparedMessage
		var err error
		if env := c.current.Load(); env != nil && sameMap(env.Message, ev) {
			msg, err = r.prepared(env)
		} else {
			msg, err = r.encode(ev, layer.Position{})
		}
		if err != nil {
			return err
		}
		return c.enqueue(outFrame{op: opText, prep: msg})
	}
}

// relayProbe is the context relayOf calls a relay handler with: the handler answers with its relay
// instead of running.
type relayProbe struct {
	context.Context
	r *relay
}

// relayCode is the code of every handler relayHandler returns.
var relayCode = reflect.ValueOf(relayHandler(nil)).Pointer()

// relayOf returns the relay behind a RelayJSON handler, or nil for any other handler (which is not
// called).
func relayOf(h EventHandler) *relay {
	if h == nil || reflect.ValueOf(h).Pointer() != relayCode {
		return nil
	}
	p := relayProbe{Context: context.Background()}
	_ = h(&p, nil)
	return p.r
}

// relayGuess is what a relay frame not yet encoded by any connection counts against the outbound
// limit until it is (deliverRelayLocked); once one connection encodes an Envelope, the others
// count its exact size. Its true size is unknown, so such frames also count against the event
// queue's capacity, as the events they skipped would have: a client that stopped reading holds at
// most inboxCap Envelopes in them, whatever their size, not OutboundLimit/relayGuess of them.
const relayGuess = 256

// deliverRelayLocked queues env for the client without running a handler, when env's handler is a
// relay and nothing could be ahead of it: the connection is open and past Connect, no event or
// client message waits, no handler is running and no history is being replayed. It reports
// whether it queued env; if not, env goes through the event queue as usual. An event that would
// overflow the outbound queue, or the event queue's capacity with frames of unknown size, goes the
// usual way too, where the rules for a slow client or a message too large apply. Callers hold
// c.mu.
func (c *Conn) deliverRelayLocked(env *layer.Envelope) bool {
	if c.pump == pumpHeld || c.dispatching || len(c.inbox) > 0 || c.replaying > 0 || c.cut ||
		c.stateNow() != stateOpen {
		return false
	}
	i := c.relayIndex(env.Type())
	if i < 0 {
		return false
	}
	size, guessed := relayGuess, int32(1)
	if v, err, ok := env.Peek(&c.events[i].relay.key); ok {
		msg, _ := v.(*PreparedMessage)
		if err != nil || msg == nil {
			return false // the handler's way reports the error
		}
		size, guessed = len(msg.frame), 0
	}
	if c.outBytes+size > c.outboundLimit || c.outGuessed+guessed > c.inboxCap {
		return false
	}
	c.out = outPool.push(c.out, outFrame{op: opRelay, relay: uint16(i), env: env})
	c.outBytes += size
	c.outGuessed += guessed
	c.srv.relayed.Add(1)
	c.kick()
	return true
}

// relayIndex returns the index in c.events of typ's handler if it is a relay, else -1. c.events
// is fixed before the connection opens; a consumer has a few handlers, so a scan is cheap.
func (c *Conn) relayIndex(typ string) int {
	if checkEventType(typ) != nil {
		return -1
	}
	for i := range c.events {
		if sameType(c.events[i].name, typ) {
			if c.events[i].relay == nil || i > 0xFFFF {
				return -1
			}
			return i
		}
	}
	return -1
}

// encodeRelays turns the relay frames of out into prepared frames, encoding each Envelope's frame
// if no other connection has. A frame larger than the connection's outbound limit is dropped for
// this connection only, and logged, as enqueue does with a handler's. A frame whose build failed
// is dropped (op opDropped), with every relay frame after it, and the first failure is returned
// with its event: the connection closes once the frames before it are written. Pump goroutine
// only, outside c.mu.
func (c *Conn) encodeRelays(out []outFrame) (failed *layer.Envelope, err error) {
	for i := range out {
		f := &out[i]
		if f.op != opRelay {
			continue
		}
		if err != nil {
			f.op = opDropped
			continue
		}
		msg, ferr := c.events[f.relay].relay.prepared(f.env)
		switch {
		case ferr != nil:
			failed, err = f.env, ferr
			f.op = opDropped
		case len(msg.frame) > c.outboundLimit:
			// outboundLimit is written before the connection opens, read-only after.
			f.op = opDropped
			c.srv.tooLarge.Add(1)
			c.failed("event", f.env.Type(), f.env.Group(), &TooLargeError{Size: len(msg.frame), Limit: c.outboundLimit})
		default:
			f.op, f.prep = opText, msg
		}
	}
	return failed, err
}

// stream sends what build makes of ev as a server-sent event, its id the event's position; one
// encoding per Envelope for every stream of this process.
func (r *relay) stream(st *Stream, ev layer.Message) error {
	enc := func(pos layer.Position) ([]byte, error) {
		payload, err := r.payload(ev, pos)
		if err != nil {
			return nil, err
		}
		return sseEvent(nil, pos, payload), nil
	}
	var b []byte
	var err error
	if env := st.current.Load(); env != nil && sameMap(env.Message, ev) {
		var v any
		v, err = env.Memo(&r.sse, func() (any, error) { return enc(env.Position) })
		b, _ = v.([]byte)
	} else {
		b, err = enc(layer.Position{})
	}
	if err != nil {
		return err
	}
	return st.send(b)
}

// sameMap reports whether a and b are the same map (not equal contents: the same one). A map value
// is a pointer to the runtime's map header.
func sameMap(a, b layer.Message) bool {
	return *(*unsafe.Pointer)(unsafe.Pointer(&a)) == *(*unsafe.Pointer)(unsafe.Pointer(&b))
}
