package ginws

import (
	"context"
	"fmt"
	"runtime/debug"
	"time"
)

// Closing. Either side may start the close handshake; the server also closes for a client's
// protocol error (after the client's earlier messages are handled), for a slow client, and on
// shutdown. Whatever happened, the connection ends the same way: the reader finishes (endLocked),
// queues itemEnd behind everything else, and the pump's last act (finish) writes what is left,
// drops the socket, leaves the groups and runs Disconnect once.

// closeWith starts the server side of the close handshake, or refuses the handshake before Accept.
func (c *Conn) closeWith(code int, reason string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closeWithLocked(code, reason)
}

// closeWithLocked is closeWith for callers that hold c.mu.
func (c *Conn) closeWithLocked(code int, reason string) {
	if c.stateNow() == stateHandshake {
		c.closeCode = int32(code)
		c.rareLocked().refuseReason = reason
		c.toLocked(stateRefused)
		return
	}
	c.closeLocked(code, reason)
}

// closeLocked queues the server's close frame. On an open connection it then waits for the
// client's answer (closing), at most CloseTimeout, after which the socket is cut; on a connection
// whose client closed first, it is the answer to the client's close frame (ended). In any other
// state it does nothing. Callers hold c.mu.
func (c *Conn) closeLocked(code int, reason string) {
	next := stateClosing
	switch c.stateNow() {
	case stateOpen:
	case statePeerEnded:
		next = stateEnded
	default:
		return
	}
	c.closeCode = int32(code)
	c.toLocked(next)
	if !c.cut {
		c.out = outPool.push(c.out, outFrame{op: opClose, data: closePayload(code, reason)})
		c.kick()
	}
	if next == stateClosing {
		c.setCloseTimerLocked(c.forceClose)
	}
}

// setCloseTimerLocked (re)starts the close timer with f. Callers hold c.mu.
func (c *Conn) setCloseTimerLocked(f func()) {
	r := c.rareLocked()
	if r.closeTimer != nil {
		r.closeTimer.Stop()
	}
	r.closeTimer = time.AfterFunc(c.srv.cfg.CloseTimeout, f)
}

// closeAfterPending closes the connection for a client's protocol error once the messages the
// client sent before the bad frame have been handled and their replies queued: the close is queued
// in the inbox behind them (a valid message followed by a broken frame still gets its answer).
// CloseTimeout bounds how long slow handlers may delay the close. Reader goroutine only.
func (c *Conn) closeAfterPending(perr *CloseError) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.protoErr != nil || c.stateNow() != stateOpen {
		return
	}
	c.protoErr = perr
	c.inbox = inboxPool.push(c.inbox, inboxItem{kind: itemProtoClose})
	c.kick()
	c.setCloseTimerLocked(func() { c.closeWith(perr.Code, perr.Reason) })
}

// shutdown closes the connection for Server.OnShutdown: 1001 once open, HTTP 503 for a handshake.
func (c *Conn) shutdown() {
	c.mu.Lock()
	defer c.mu.Unlock()
	const reason = "server shutting down"
	if c.stateNow() == stateHandshake {
		c.closeCode = CloseGoingAway
		c.rareLocked().refuseReason = reason
		c.toLocked(stateRefusedShutdown)
		return
	}
	c.closeLocked(CloseGoingAway, reason)
}

// forceClose cuts the socket of a close handshake that took too long (or of a connection that
// Server.Shutdown gave up on); the reader then ends the connection.
func (c *Conn) forceClose() {
	c.mu.Lock()
	nc := c.nc
	c.cutLocked(CloseGoingAway)
	c.mu.Unlock()
	if nc != nil {
		_ = nc.Close()
	}
}

// cutLocked marks the socket as dropped (the caller closes it after unlocking): nothing more is
// written, and the reader, whose next read fails, ends the connection. code is what Disconnect gets
// unless the server had closed with a code of its own. The client's messages already read are
// still handled — a message a client sent just before it vanished may matter to others. Callers
// hold c.mu.
func (c *Conn) cutLocked(code int) {
	if c.closeCode == 0 {
		c.closeCode = int32(code)
	}
	c.cut = true
	c.broadcast()
}

// peerClosed ends the connection after the client's close frame. The messages the client sent
// before it are still handled, and what their handlers send is written before the answer to the
// close (finish queues it, unless the server had sent a close frame of its own — after a protocol
// error, say). Reader goroutine only.
func (c *Conn) peerClosed(code int) {
	c.mu.Lock()
	if c.closeCode == 0 && c.protoErr == nil {
		c.rareLocked().echoClose = true
	}
	c.endLocked(code)
	c.mu.Unlock()
}

// end ends the connection after a read error: the socket is closed now. Reader goroutine only.
func (c *Conn) end(code int) {
	c.mu.Lock()
	c.cutLocked(CloseAbnormal)
	c.endLocked(code)
	c.mu.Unlock()
	_ = c.nc.Close()
}

// endLocked records that the reader is done and queues itemEnd for the pump. code is what
// Disconnect gets unless the server had decided on a close code of its own. Callers hold c.mu.
func (c *Conn) endLocked(code int) {
	switch c.stateNow() {
	case stateOpen:
		c.toLocked(statePeerEnded)
	case stateClosing:
		c.toLocked(stateEnded)
	case statePeerEnded, stateEnded:
	default:
		return
	}
	switch {
	case c.closeCode != 0:
		code = int(c.closeCode)
	case c.protoErr != nil:
		code = c.protoErr.Code
	}
	c.endCode = int32(code)
	c.inbox = inboxPool.push(c.inbox, inboxItem{kind: itemEnd})
	c.kick()
}

// finish is the pump's last act: write what is left (with the answer to a client's close), drop
// the socket, leave the layer, and run Disconnect.
func (c *Conn) finish() {
	c.mu.Lock()
	if c.stateNow() == statePeerEnded {
		// Everything the client sent has been handled. A frame queued from now on would follow
		// the answer to its close (or the end of its stream) and could never be written: a send
		// is refused with ErrClosed from here, not accepted and then dropped.
		c.toLocked(stateEnded)
	}
	if c.rareNow().echoClose && c.closeCode == 0 && !c.cut {
		var payload []byte
		if code := int(c.endCode); code != CloseNoStatus {
			payload = closePayload(code, "")
		}
		c.out = outPool.push(c.out, outFrame{op: opClose, data: payload})
	}
	c.mu.Unlock()
	c.flush()
	c.mu.Lock()
	c.toLocked(stateClosed)
	c.pump = pumpDone
	c.cut = true
	code := int(c.endCode)
	if t := c.rareNow().closeTimer; t != nil {
		t.Stop()
	}
	c.stopExpiryLocked()
	outPool.put(c.out)
	outPool.put(c.outSpare)
	inboxPool.put(c.inboxSpare)
	c.out, c.outSpare, c.inboxSpare, c.pongQueued = nil, nil, nil, false
	slowWhy := c.slowWhy
	c.mu.Unlock()
	c.zw.release() // the pump's own; the last flush is done
	_ = c.nc.Close()
	if slowWhy != "" {
		c.Logger().Warn("ginws: closed a slow client", "why", slowWhy, "close_code", CloseSlowClient,
			"close_frame_written", c.closeWritten)
	}
	c.cancel()
	ctx, cancel := context.WithTimeout(context.WithoutCancel(c.ctx), c.srv.cfg.DisconnectTimeout)
	defer cancel()
	c.untrackPresence(ctx)
	// Leave the groups while still subscribed, so that a group send in between reaches the
	// (ended) connection and is dropped, rather than queued on a channel nobody will read.
	c.leaveGroups(ctx)
	if c.unsubscribe != nil {
		c.unsubscribe()
	}
	c.callDisconnect(ctx, code)
	c.srv.closes.count(code)
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
