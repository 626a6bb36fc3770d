package ginws

import (
	"errors"
	"fmt"
	"runtime/debug"
	"time"

	"ginws.dev/ginws/layer"
)

// Dispatch. An accepted connection runs on these goroutines:
//
//   - the reader, always (conn_read.go): it parses client frames, queues messages in the inbox and
//     answers pings;
//   - the pump, only while there is work: it runs the consumer's handlers one at a time, in
//     arrival order, then writes everything they queued with one system call (conn_write.go), and
//     exits when idle — an idle connection costs one parked reader goroutine and no buffers;
//   - with a layer that cannot push (no layer.Subscriber), one goroutine polling the layer
//     (layer.Listen).
//
// An event for a RelayJSON handler with nothing queued ahead of it skips the inbox and the handler:
// deliver queues it for the writer directly, and the pump encodes it (once per Envelope for the
// whole process) as it writes (relay.go).
//
// Other goroutines only call in: the layer delivering events (deliver), the server's ping timer
// (ping), close timers (forceClose), and whoever sends, closes or joins groups through the Conn.
// They all meet in c.mu, which no one holds across I/O, logging or a callback.

type itemKind uint8

const (
	itemFrame      itemKind = iota // a client message
	itemEvent                      // a layer event
	itemProtoClose                 // close for c.protoErr: the client's messages before it are handled
	itemEnd                        // the reader is done: finish
)

type inboxItem struct {
	kind  itemKind
	frame ClientMessage
	env   *layer.Envelope
}

// maxPendingFrames bounds the client messages read but not yet handled; the reader stops reading
// (TCP pushes back on the client) until the consumer catches up.
const maxPendingFrames = 16

// start runs an accepted connection after Connect returned.
func (c *Conn) start() {
	c.extendRead()
	c.srv.pingLater()
	c.mu.Lock()
	c.pump = pumpIdle
	if len(c.inbox) > 0 || len(c.out) > 0 {
		c.kick()
	}
	c.mu.Unlock()
	go c.readLoop()
}

// deliver is the layer's callback (layer.Listen): it queues an event for the pump. It never
// blocks, and does no I/O: the in-memory layer calls it under its own lock.
func (c *Conn) deliver(env *layer.Envelope) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch c.stateNow() {
	case stateHandshake, stateOpen:
	default:
		return nil // the connection is going away; the event has nobody to reach
	}
	if c.deliverRelayLocked(env) {
		return nil
	}
	if c.replaying > 0 {
		c.replayed++
	} else if c.pendingEvents >= c.inboxCap+c.replayed && env.Message.Type() != closeEventType {
		// A close event (Server.CloseGroup: a logout) is queued even over the cap: a busy or
		// flooded connection must still be signed out. It is one event, and the last.
		if c.pump == pumpWriting && monoNow()-c.writeStart > int64(slowWrite) {
			c.slowLocked("event queue full while a write is blocked")
		}
		c.srv.droppedEvents.Add(1)
		return layer.ErrChannelFull
	}
	c.inbox = inboxPool.push(c.inbox, inboxItem{kind: itemEvent, env: env})
	c.pendingEvents++
	c.kick()
	return nil
}

// slowWrite is how long a write must have been blocked before a full event queue counts as a slow
// client rather than a burst.
const slowWrite = 100 * time.Millisecond

// waitForRoom blocks a polling listener (a layer without Subscriber, see layer.Listen) while the
// event queue is full, so that messages wait in the layer, where its capacity applies; false once
// the reader is done.
func (c *Conn) waitForRoom() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for c.pendingEvents >= c.inboxCap && c.stateNow() < statePeerEnded {
		c.wait()
	}
	return c.stateNow() < statePeerEnded
}

// pushFrame queues a client message for the pump. Reader goroutine only: it waits while
// maxPendingFrames are pending, which stops the reading.
func (c *Conn) pushFrame(f ClientMessage) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for c.pendingFrames >= maxPendingFrames && c.stateNow() == stateOpen && !c.cut {
		c.wait()
	}
	if c.stateNow() != stateOpen || c.cut {
		return // the server is closing: the client's messages are no longer handled
	}
	c.inbox = inboxPool.push(c.inbox, inboxItem{kind: itemFrame, frame: f})
	c.pendingFrames++
	c.kick()
}

// runPump runs handlers and writes their output until there is nothing left to do. Each cycle
// takes the lock twice: once to take the queued items (and settle the previous write), once to take
// what the handlers queued for the client, which it then writes with one system call.
func (c *Conn) runPump() {
	var items []inboxItem // handled in the previous cycle, to recycle
	var written []outFrame
	var werr error
	c.mu.Lock()
	for {
		if written != nil {
			c.pump = pumpRunning
			c.broadcast() // a reader waiting for a stuck pong (see pong)
			c.recycleOutLocked(written)
			written = nil
		}
		if items != nil {
			if c.inboxSpare == nil {
				c.inboxSpare = items[:0] // its elements were cleared as they were handled
			} else {
				inboxPool.put(items)
			}
			items = nil
		}
		if werr != nil {
			c.mu.Unlock()
			c.writeFailed(werr)
			werr = nil
			c.mu.Lock()
		}
		if len(c.inbox) > 0 {
			items = c.inbox
			c.inbox, c.inboxSpare = c.inboxSpare, nil
			c.replayed = 0 // taken with the rest
			for i := range items {
				switch items[i].kind {
				case itemFrame:
					c.pendingFrames--
				case itemEvent:
					c.pendingEvents--
				}
			}
			c.dispatching = true
			c.broadcast()
			c.mu.Unlock()
			for i := range items {
				it := items[i]
				items[i] = inboxItem{}
				switch it.kind {
				case itemFrame:
					c.handleFrame(it.frame)
				case itemEvent:
					c.handleEvent(it.env)
				case itemProtoClose:
					c.closeWith(c.protoErr.Code, c.protoErr.Reason)
				case itemEnd:
					c.finish()
					return // the pump is done: nothing runs after Disconnect
				}
				if i&31 == 31 {
					c.flush() // a long batch: write as it goes, so output does not pile up
				}
			}
			c.mu.Lock()
			c.dispatching = false
		}
		if len(c.out) == 0 {
			if len(c.inbox) == 0 {
				c.idleLocked(items)
				c.mu.Unlock()
				return
			}
			continue
		}
		out, now, ok := c.takeOutLocked()
		written = out
		if !ok {
			continue
		}
		c.mu.Unlock()
		werr = c.writeOut(out, now)
		c.mu.Lock()
	}
}

// idleLocked stops the pump and gives every queue array back to the pools, so that an idle
// connection holds none. Callers hold c.mu; the queues are empty.
func (c *Conn) idleLocked(items []inboxItem) {
	inboxPool.put(items)
	inboxPool.put(c.inboxSpare)
	inboxPool.put(c.inbox)
	outPool.put(c.outSpare)
	outPool.put(c.out)
	c.inbox, c.inboxSpare, c.out, c.outSpare = nil, nil, nil, nil
	c.pump = pumpIdle
}

// handleFrame runs Receive, unless the server is closing (the client's later messages are then
// ignored). A client that closed first still has its earlier messages handled.
func (c *Conn) handleFrame(f ClientMessage) {
	if s := c.stateNow(); s != stateOpen && s != statePeerEnded {
		return
	}
	defer c.recoverHandler("Receive", "")
	if err := c.consumer.Receive(c.ctx, f); err != nil {
		c.failed("Receive", "", "", err)
	}
}

// handleEvent runs the event's handler, unless the connection is going away.
func (c *Conn) handleEvent(env *layer.Envelope) {
	if c.stateNow() != stateOpen {
		return // the event has nobody to reach
	}
	typ := env.Type()
	if typ == closeEventType {
		c.handleCloseEvent(env)
		return
	}
	h, err := c.handler(typ)
	if err != nil {
		c.failed("event dispatch", typ, env.Group(), err)
		return
	}
	c.current.Store(env)
	defer c.current.Store(nil)
	defer c.recoverHandler("event", typ)
	if err := h(c.ctx, env.Message); err != nil {
		c.failed("event", typ, env.Group(), err)
	}
}

// recoverHandler turns a handler panic into a 1011 close; the process goes on.
func (c *Conn) recoverHandler(what, typ string) {
	if p := recover(); p != nil {
		c.failed(what, typ, "", &panicError{value: p, stack: debug.Stack()})
	}
}

// failed applies the error policy of handlers: a *CloseError closes with its code; ErrClosed is
// the expected result of sending on a closing connection; a *TooLargeError is a message dropped for
// this connection only (logged, the connection goes on); anything else is logged and closes the
// connection with 1011. typ and group describe the event being handled, if any.
func (c *Conn) failed(what, typ, group string, err error) {
	if ce := (*CloseError)(nil); errors.As(err, &ce) {
		code := ce.Code
		if !validCloseCode(code) {
			code = CloseInternalError
		}
		c.closeWith(code, ce.Reason)
		return
	}
	if errors.Is(err, ErrClosed) {
		return
	}
	if pe := (*panicError)(nil); errors.As(err, &pe) {
		c.srv.handlerErrors.Add(1)
		if typ != "" {
			what += " " + typ
		}
		c.Logger().Error("ginws: handler panicked; closing the connection with 1011",
			"handler", what, "panic", fmt.Sprint(pe.value), "stack", string(pe.stack))
		c.closeWith(CloseInternalError, "internal error")
		return
	}
	if tl := (*TooLargeError)(nil); errors.As(err, &tl) {
		c.Logger().Warn("ginws: message too large for this connection; dropped for it", "handler", what,
			"type", typ, "group", group, "size", tl.Size, "outbound_limit", tl.Limit)
		return
	}
	c.srv.handlerErrors.Add(1)
	if typ != "" {
		what += " " + typ
	}
	c.Logger().Error("ginws: handler failed; closing the connection with 1011", "handler", what, "error", err)
	c.closeWith(CloseInternalError, "internal error")
}
