package ginws

import (
	"context"
	"errors"
	"fmt"
	"net"
	"runtime/debug"
	"sync"
	"time"

	"ginws.dev/ginws/layer"
)

// The runtime of an accepted connection runs on at most three goroutines:
//
//   - the reader, always: it reads frames (answering pings through the writer) and queues them;
//   - the pump, only while there is work: it runs the consumer's handlers one at a time, in arrival
//     order, then writes everything they queued in one system call, and exits when idle — so an idle
//     connection costs one parked goroutine and its read buffer;
//   - a layer poller, only with a layer that cannot push (no Subscriber).
//
// All state shared between them is guarded by c.mu; no lock is held across I/O.

// start runs an accepted connection after Connect returned.
func (c *Conn) start() {
	c.extendRead()
	c.srv.pingLater()
	c.mu.Lock()
	c.hold = false
	if len(c.inbox) > 0 || len(c.out) > 0 {
		c.kick()
	}
	c.mu.Unlock()
	go c.readLoop()
}

// kick starts the pump unless it runs. Callers hold c.mu.
func (c *Conn) kick() {
	if !c.pumping && !c.hold {
		c.pumping = true
		go c.pump()
	}
}

// deliver is the layer's callback (Subscriber): it queues an event for the pump.
func (c *Conn) deliver(env *layer.Envelope) error {
	c.mu.Lock()
	if c.ended || c.closeCode != 0 {
		c.mu.Unlock()
		return nil // the connection is going away; the event has nobody to reach
	}
	if c.pendingEvents >= c.inboxCap {
		if c.writing && monoNow()-c.writeStart > int64(slowWrite) {
			c.slowLocked("event queue full while a write is blocked")
		}
		c.mu.Unlock()
		c.srv.droppedEvents.Add(1)
		return layer.ErrChannelFull
	}
	c.inbox = append(c.inbox, inboxItem{kind: itemEvent, env: env})
	c.pendingEvents++
	c.kick()
	c.mu.Unlock()
	return nil
}

// slowWrite is how long a write must have been blocked before a full event queue counts as a slow
// client rather than a burst.
const slowWrite = 100 * time.Millisecond

// waitForRoom blocks a polling listener (a layer without Subscriber, see layer.Listen) while the
// connection's event queue is full, so that messages wait in the layer, where its capacity
// applies; false once the connection has ended.
func (c *Conn) waitForRoom() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for c.pendingEvents >= c.inboxCap && !c.ended {
		c.wait()
	}
	return !c.ended
}

// enqueue queues a frame for the client.
func (c *Conn) enqueue(f outFrame) error {
	size := f.size()
	c.mu.Lock()
	switch {
	case c.state == stateConnecting:
		c.mu.Unlock()
		return ErrNotAccepted
	case c.state != stateOpen:
		c.mu.Unlock()
		return ErrClosed
	case size > c.outboundLimit:
		// Not a slow client: this message could never fit. It is dropped for this connection
		// only, and the connection stays open (see ErrMessageTooLarge).
		limit := c.outboundLimit
		c.mu.Unlock()
		c.srv.tooLarge.Add(1)
		return &TooLargeError{Size: size, Limit: limit}
	case c.outBytes+size > c.outboundLimit:
		c.slowLocked("outbound queue over OutboundLimit")
		c.mu.Unlock()
		return ErrSlowClient
	}
	c.out = append(c.out, f)
	c.outBytes += size
	c.kick()
	c.mu.Unlock()
	return nil
}

// idleSpare is the largest spare queue an idle connection keeps.
const idleSpare = 4

// pump runs handlers and writes their output until there is nothing left to do. Each cycle takes
// the lock twice: once to take the queued items (and settle the previous write), once to take what
// the handlers queued for the client, which it then writes with one system call.
func (c *Conn) pump() {
	var items []inboxItem // handled in the previous cycle, to recycle
	var written []outFrame
	var werr error
	c.mu.Lock()
	for {
		if written != nil {
			c.writing = false
			c.broadcast() // a reader waiting for the writer to catch up (see pong)
			clear(written)
			if cap(written) <= 32 && c.outSpare == nil {
				c.outSpare = written[:0]
			}
			written = nil
		}
		if items != nil {
			if cap(items) <= 64 && c.inboxSpare == nil {
				c.inboxSpare = items[:0]
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
			for i := range items {
				switch items[i].kind {
				case itemFrame:
					c.pendingFrames--
				case itemEvent:
					c.pendingEvents--
				}
			}
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
					c.closeWith(int(c.protoErr.Code), c.protoErr.Reason)
				case itemEnd:
					c.finish()
					return // pumping stays true: nothing runs after Disconnect
				}
				if i&31 == 31 {
					c.flush() // a long batch: write as it goes, so output does not pile up
				}
			}
			c.mu.Lock()
		}
		if len(c.out) == 0 {
			if len(c.inbox) == 0 {
				// Going idle: keep only small spare queues, so a connection that once had a
				// burst does not hold its arrays while it sleeps.
				if items != nil && cap(items) <= idleSpare && c.inboxSpare == nil {
					c.inboxSpare = items[:0]
				}
				if cap(c.inboxSpare) > idleSpare {
					c.inboxSpare = nil
				}
				if cap(c.outSpare) > idleSpare {
					c.outSpare = nil
				}
				if cap(c.inbox) > idleSpare {
					c.inbox = nil // empty here
				}
				if cap(c.out) > idleSpare {
					c.out = nil // empty here
				}
				c.pumping = false
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
		werr = c.write(out, now)
		c.mu.Lock()
	}
}

func (c *Conn) handleFrame(f ClientMessage) {
	if c.flags.Load()&flagServerClosing != 0 {
		return // the server is closing: later client frames are ignored
	}
	defer c.recoverHandler("Receive", "")
	if err := c.consumer.Receive(c.ctx, f); err != nil {
		c.failed("Receive", err)
	}
}

func (c *Conn) handleEvent(env *layer.Envelope) {
	if c.flags.Load() != 0 {
		return // closing or ended: the event has nobody to reach
	}
	typ := env.Type()
	h, err := c.handler(typ)
	if err != nil {
		c.failed("event dispatch", err)
		return
	}
	c.current.Store(env)
	defer c.current.Store(nil)
	defer c.recoverHandler("event", typ)
	if err := h(c.ctx, env.Message); err != nil {
		if tl := (*TooLargeError)(nil); errors.As(err, &tl) {
			// The member misses this event; the connection goes on.
			c.Logger().Warn("ginws: event too large for this connection; dropped for it",
				"type", typ, "group", env.Group(), "size", tl.Size, "outbound_limit", tl.Limit)
			return
		}
		c.failed("event "+typ, err)
	}
}

// recoverHandler turns a handler panic into a 1011 close; the process goes on.
func (c *Conn) recoverHandler(what, typ string) {
	if p := recover(); p != nil {
		if typ != "" {
			what += " " + typ
		}
		c.srv.handlerErrors.Add(1)
		c.Logger().Error("ginws: handler panicked; closing the connection with 1011",
			"handler", what, "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
		c.closeWith(CloseInternalError, "internal error")
	}
}

// failed applies the error policy of handlers: a *CloseError closes with its code; ErrClosed is
// the expected result of sending on a closing connection; anything else is logged and closes
// the connection with 1011.
func (c *Conn) failed(what string, err error) {
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
	if tl := (*TooLargeError)(nil); errors.As(err, &tl) {
		c.Logger().Warn("ginws: a message too large for this connection was dropped", "handler", what,
			"size", tl.Size, "outbound_limit", tl.Limit)
		return
	}
	c.srv.handlerErrors.Add(1)
	c.Logger().Error("ginws: handler failed; closing the connection with 1011", "handler", what, "error", err)
	c.closeWith(CloseInternalError, "internal error")
}

var writeBufPool = sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}

// flush writes every queued frame now (the pump's mid-batch and final writes).
func (c *Conn) flush() {
	c.mu.Lock()
	out, now, ok := c.takeOutLocked()
	c.mu.Unlock()
	if !ok {
		return
	}
	err := c.write(out, now)
	c.mu.Lock()
	c.writing = false
	c.broadcast()
	clear(out)
	c.mu.Unlock()
	if err != nil {
		c.writeFailed(err)
	}
}

// takeOutLocked takes the frames queued for the client and marks a write under way. ok is false
// when there is nothing to write, or the socket is gone (the frames are dropped). Callers hold
// c.mu.
func (c *Conn) takeOutLocked() (out []outFrame, now int64, ok bool) {
	out = c.out
	if len(out) == 0 {
		return nil, 0, false
	}
	c.out, c.outSpare, c.outBytes, c.pongIdx = c.outSpare, nil, 0, 0
	if c.tcpClosed {
		return out, 0, false
	}
	c.writing = true
	now = monoNow()
	c.writeStart = now
	return out, now, true
}

// write sends frames with one system call. Pump goroutine only. The write deadline is refreshed
// only when less than half of WriteTimeout is left, which spares a timer update per write: a write
// to a client that stopped reading fails after between WriteTimeout/2 and WriteTimeout.
func (c *Conn) write(out []outFrame, now int64) error {
	c.srv.writes.Add(1)
	c.srv.framesWritten.Add(uint64(len(out)))
	timeout := int64(c.srv.cfg.WriteTimeout)
	if c.writeDeadline-now < timeout/2 {
		c.writeDeadline = now + timeout
		_ = c.nc.SetWriteDeadline(monoTime(c.writeDeadline))
	}
	if len(out) == 1 && out[0].framed {
		_, err := c.nc.Write(out[0].data) // a relayed frame: shared bytes, no copy
		return err
	}
	closing := out[len(out)-1].op == opClose // a close frame is always the last one queued
	bp := writeBufPool.Get().(*[]byte)
	buf := (*bp)[:0]
	for _, f := range out {
		if f.framed {
			buf = append(buf, f.data...)
		} else {
			buf = appendFrame(buf, f.op, f.data)
		}
	}
	_, err := c.nc.Write(buf)
	if cap(buf) <= 64<<10 {
		*bp = buf[:0]
		writeBufPool.Put(bp)
	}
	if err == nil && closing {
		c.closeWritten = true
	}
	return err
}

// monoBase anchors monotonic nanosecond timestamps (int64s are cheaper to keep than time.Time).
var monoBase = time.Now()

func monoNow() int64 { return int64(time.Since(monoBase)) }

func monoTime(n int64) time.Time { return monoBase.Add(time.Duration(n)) }

// writeFailed handles a failed write. The socket may hold part of a frame now, so no close frame
// can follow: the connection is cut. A write that timed out is a slow client.
func (c *Conn) writeFailed(err error) {
	var ne net.Error
	timeout := errors.As(err, &ne) && ne.Timeout()
	c.mu.Lock()
	if timeout {
		c.slowLocked("write timed out")
	}
	c.cutLocked(CloseAbnormal)
	c.mu.Unlock()
	_ = c.nc.Close()
}

// cutLocked marks the TCP connection as dropped (the caller closes it after unlocking): nothing more
// is written, and the reader, which then fails, ends the connection. Callers hold c.mu.
func (c *Conn) cutLocked(code int) {
	if c.closeCode == 0 {
		c.closeCode = int32(code)
		c.flags.Or(flagServerClosing)
	}
	c.tcpClosed = true
	c.broadcast()
}

// slowLocked closes a client that cannot keep up: what is queued for it is dropped and a close
// frame (CloseSlowClient, "slow client") is queued in its place. If a write to the client is under
// way, the close frame waits behind it; the write's deadline (WriteTimeout) and the close timer
// (CloseTimeout) bound that wait. Whether the close frame was written is logged when the
// connection ends (finish): a client whose socket never drained sees 1006, not 1008. Callers hold
// c.mu; slowLocked does no I/O and no logging.
func (c *Conn) slowLocked(why string) {
	if c.closeCode != 0 || c.ended || c.state != stateOpen {
		return
	}
	c.srv.slowClients.Add(1)
	c.slowWhy = why
	clear(c.out)
	c.out, c.outBytes, c.pongIdx = c.out[:0], 0, 0
	c.closeLocked(CloseSlowClient, "slow client")
}

// closeWith starts the server side of the close handshake (or refuses, before Accept).
func (c *Conn) closeWith(code int, reason string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch c.state {
	case stateConnecting:
		c.refused = true
	case stateOpen:
		c.closeLocked(code, reason)
	}
}

// closeLocked queues the close frame of an open connection and starts the close timer, after which
// a client that has not answered is cut off. Callers hold c.mu.
func (c *Conn) closeLocked(code int, reason string) {
	c.state = stateClosing
	c.closeCode = int32(code)
	c.flags.Or(flagServerClosing)
	if !c.tcpClosed {
		c.out = append(c.out, outFrame{op: opClose, data: closePayload(code, reason)})
		c.kick()
	}
	if c.closeTimer != nil {
		c.closeTimer.Stop()
	}
	c.closeTimer = time.AfterFunc(c.srv.cfg.CloseTimeout, c.forceClose)
}

// closeAfterPending closes the connection for a client's protocol error once the messages the
// client sent before the bad frame have been handled and their replies queued: the close is queued
// in the inbox behind them (a valid message followed by a broken frame still gets its answer).
// CloseTimeout bounds how long slow handlers may delay the close.
func (c *Conn) closeAfterPending(perr *CloseError) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.protoErr != nil || c.ended {
		return
	}
	c.protoErr = perr
	c.inbox = append(c.inbox, inboxItem{kind: itemProtoClose})
	c.kick()
	if c.closeTimer == nil {
		c.closeTimer = time.AfterFunc(c.srv.cfg.CloseTimeout, func() { c.closeWith(perr.Code, perr.Reason) })
	}
}

// shutdown closes the connection for Server.OnShutdown.
func (c *Conn) shutdown() {
	c.mu.Lock()
	if c.state == stateConnecting {
		c.refused, c.shuttingDown = true, true
		c.mu.Unlock()
		return
	}
	c.mu.Unlock()
	c.closeWith(CloseGoingAway, "server shutting down")
}

// forceClose drops the TCP connection of a close handshake that took too long.
func (c *Conn) forceClose() {
	c.mu.Lock()
	nc := c.nc
	c.cutLocked(CloseGoingAway)
	c.mu.Unlock()
	if nc != nil {
		_ = nc.Close()
	}
}

// ping queues a keepalive ping (Server.pingAll calls it every PingInterval).
func (c *Conn) ping() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.state != stateOpen || c.ended || c.hold {
		return
	}
	c.out = append(c.out, outFrame{op: opPing})
	c.outBytes += maxHeaderLen
	c.kick()
}

// pong answers a client's ping. Every ping is answered (the Autobahn suite checks that; RFC 6455
// would allow answering only the latest), pongs count against the outbound budget like any frame,
// and while a pong waits behind a write under way the reader stops reading — a client that floods
// pings and reads nothing is held back by TCP instead of growing the server's memory, and is closed
// as slow when the blocked write times out. Reader goroutine only.
func (c *Conn) pong(payload []byte) {
	f := outFrame{op: opPong, data: append([]byte(nil), payload...)}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.state != stateOpen || c.tcpClosed {
		return
	}
	if c.outBytes+f.size() > c.outboundLimit {
		c.slowLocked("outbound queue over OutboundLimit")
		return
	}
	c.out = append(c.out, f)
	c.outBytes += f.size()
	c.pongIdx = int32(len(c.out))
	c.kick()
	for c.pongIdx > 0 && c.writing && !c.tcpClosed && c.state == stateOpen {
		c.wait()
	}
}

func (c *Conn) pushFrame(f ClientMessage) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for c.pendingFrames >= maxPendingFrames && !c.ended && c.closeCode == 0 && !c.tcpClosed {
		c.wait()
	}
	if c.ended || c.closeCode != 0 {
		return
	}
	c.inbox = append(c.inbox, inboxItem{kind: itemFrame, frame: f})
	c.pendingFrames++
	c.kick()
}

// peerClosed handles the client's close frame and ends the connection. The messages the client
// sent before it are still handled, and what their handlers send is written before the answer to
// the close (finish queues it, unless the server had sent a close frame of its own — after a
// protocol error, say).
func (c *Conn) peerClosed(code int) {
	c.mu.Lock()
	if c.closeCode == 0 && c.protoErr == nil {
		c.echoClose = true
	}
	c.endLocked(code)
	c.mu.Unlock()
}

// end ends the connection after a read error: the socket is closed now.
func (c *Conn) end(code int) {
	c.mu.Lock()
	c.tcpClosed = true
	c.broadcast()
	c.endLocked(code)
	c.mu.Unlock()
	_ = c.nc.Close()
}

func (c *Conn) endLocked(code int) {
	if c.ended {
		return
	}
	c.ended = true
	c.flags.Or(flagEnded)
	switch {
	case c.closeCode != 0:
		code = int(c.closeCode)
	case c.protoErr != nil:
		code = c.protoErr.Code
	}
	c.endCode = int32(code)
	c.inbox = append(c.inbox, inboxItem{kind: itemEnd})
	c.broadcast()
	c.kick()
}

// finish is the pump's last act: write what is left (the answer to a client's close), drop the
// socket, leave the layer, and run Disconnect.
func (c *Conn) finish() {
	c.mu.Lock()
	if c.echoClose && c.closeCode == 0 && !c.tcpClosed {
		// Answer the client's close, after everything the handlers sent.
		var payload []byte
		if code := int(c.endCode); code != CloseNoStatus {
			payload = closePayload(code, "")
		}
		c.out = append(c.out, outFrame{op: opClose, data: payload})
		c.state = stateClosing
	}
	c.mu.Unlock()
	c.flush()
	c.mu.Lock()
	c.state = stateClosed
	c.tcpClosed = true
	code := int(c.endCode)
	if c.closeTimer != nil {
		c.closeTimer.Stop()
	}
	c.out, c.outSpare, c.inboxSpare, c.pongIdx = nil, nil, nil, 0
	slowWhy := c.slowWhy
	c.mu.Unlock()
	_ = c.nc.Close()
	if slowWhy != "" {
		c.Logger().Warn("ginws: closed a slow client", "why", slowWhy, "close_code", CloseSlowClient,
			"close_frame_written", c.closeWritten)
	}
	c.cancel()
	ctx, cancel := context.WithTimeout(context.WithoutCancel(c.ctx), c.srv.cfg.DisconnectTimeout)
	defer cancel()
	// Leave the groups while still subscribed, so that a group send in between reaches the
	// (ended) connection and is dropped, rather than queued on a channel nobody will read.
	c.leaveGroups(ctx)
	if c.unsubscribe != nil {
		c.unsubscribe()
	}
	c.callDisconnect(ctx, code)
	c.srv.open.Add(-1)
	c.srv.disconnected.Add(1)
	c.srv.forget(c)
}

func (c *Conn) callDisconnect(ctx context.Context, code int) {
	defer func() {
		if p := recover(); p != nil {
			c.srv.handlerErrors.Add(1)
			c.Logger().Error("ginws: Disconnect panicked", "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
		}
	}()
	c.consumer.Disconnect(ctx, code)
}
