package ginws

import (
	"context"
	"errors"
	"fmt"
	"net"
	"runtime/debug"
	"sync"
	"time"
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
	if c.pullLayer {
		go c.pollLayer()
	}
}

// kick starts the pump unless it runs. Callers hold c.mu.
func (c *Conn) kick() {
	if !c.pumping && !c.hold {
		c.pumping = true
		go c.pump()
	}
}

// deliver is the layer's callback (Subscriber): it queues an event for the pump.
func (c *Conn) deliver(env *Envelope) error {
	c.mu.Lock()
	if c.ended || c.closeCode != 0 {
		c.mu.Unlock()
		return nil // the connection is going away; the event has nobody to reach
	}
	if c.pendingEvents >= c.inboxCap {
		slow := c.writing && c.state == stateOpen && monoNow()-c.writeStart > int64(slowWrite)
		if slow {
			c.slowLocked("event queue full while a write is blocked")
		}
		c.mu.Unlock()
		c.srv.droppedEvents.Add(1)
		return ErrChannelFull
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

// pollLayer feeds the inbox from Layer.Receive, for layers without Subscriber.
func (c *Conn) pollLayer() {
	layer := c.srv.cfg.Layer
	for {
		c.mu.Lock()
		for c.pendingEvents >= c.inboxCap && !c.ended {
			c.wait()
		}
		ended := c.ended
		c.mu.Unlock()
		if ended {
			return
		}
		msg, err := layer.Receive(c.ctx, c.channel)
		if err != nil {
			if c.ctx.Err() != nil {
				return
			}
			c.Logger().Warn("ginws: layer receive failed; retrying", "error", err)
			select {
			case <-c.ctx.Done():
				return
			case <-time.After(100 * time.Millisecond):
			}
			continue
		}
		_ = c.deliver(NewEnvelope(msg))
	}
}

// enqueue queues a frame for the client.
func (c *Conn) enqueue(f outFrame) error {
	c.mu.Lock()
	switch {
	case c.state == stateConnecting:
		c.mu.Unlock()
		return ErrNotAccepted
	case c.state != stateOpen:
		c.mu.Unlock()
		return ErrClosed
	}
	if c.outBytes+f.size() > c.outboundLimit {
		c.slowLocked("outbound queue over OutboundLimit")
		c.mu.Unlock()
		return ErrSlowClient
	}
	c.out = append(c.out, f)
	c.outBytes += f.size()
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

func (c *Conn) handleFrame(f Frame) {
	if c.flags.Load()&flagServerClosing != 0 {
		return // the server is closing: later client frames are ignored
	}
	defer c.recoverHandler("Receive", "")
	if err := c.consumer.Receive(c.ctx, f); err != nil {
		c.failed("Receive", err)
	}
}

func (c *Conn) handleEvent(env *Envelope) {
	if c.flags.Load() != 0 {
		return // closing or ended: the event has nobody to reach
	}
	typ := env.typ
	if typ == "" && env.Message != nil {
		typ = env.Message.Type() // an Envelope built without NewEnvelope
	}
	h, err := c.handler(typ)
	if err != nil {
		c.failed("event dispatch", err)
		return
	}
	c.current = env
	defer func() { c.current = nil }()
	defer c.recoverHandler("event", typ)
	if err := h(c.ctx, env.Message); err != nil {
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
	c.out, c.outSpare, c.outBytes = c.outSpare, nil, 0
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
	return err
}

// monoBase anchors monotonic nanosecond timestamps (int64s are cheaper to keep than time.Time).
var monoBase = time.Now()

func monoNow() int64 { return int64(time.Since(monoBase)) }

func monoTime(n int64) time.Time { return monoBase.Add(time.Duration(n)) }

func (c *Conn) writeFailed(err error) {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		c.mu.Lock()
		c.slowLocked("write timed out")
		c.mu.Unlock()
		return
	}
	c.abort(CloseAbnormal)
}

// abort drops the TCP connection; the reader then ends the connection.
func (c *Conn) abort(code int) {
	c.mu.Lock()
	if c.closeCode == 0 {
		c.closeCode = int32(code)
		c.flags.Or(flagServerClosing)
	}
	c.tcpClosed = true
	c.mu.Unlock()
	_ = c.nc.Close()
}

// slowLocked closes a client that cannot keep up. Callers hold c.mu.
func (c *Conn) slowLocked(why string) {
	if c.closeCode != 0 || c.ended || c.state != stateOpen {
		return
	}
	c.srv.slowClients.Add(1)
	c.state = stateClosing
	c.closeCode = CloseSlowClient
	c.flags.Or(flagServerClosing)
	clear(c.out)
	c.out, c.outBytes = c.out[:0], 0
	c.srv.cfg.Logger.Warn("ginws: closing a slow client", "channel", c.channel, "path", c.scope.Path(),
		"why", why, "close_code", CloseSlowClient)
	if c.writing {
		// A write to this client is stuck: cut it off; no close frame could get through.
		c.tcpClosed = true
		_ = c.nc.Close()
		return
	}
	c.out = append(c.out, outFrame{op: opClose, data: closePayload(CloseSlowClient, "slow client")})
	c.kick()
	c.closeTimer = time.AfterFunc(c.srv.cfg.CloseTimeout, c.forceClose)
}

// closeWith starts the server side of the close handshake (or refuses, before Accept).
func (c *Conn) closeWith(code int, reason string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch c.state {
	case stateConnecting:
		c.refused = true
	case stateOpen:
		c.state = stateClosing
		c.closeCode = int32(code)
		c.flags.Or(flagServerClosing)
		if !c.tcpClosed {
			c.out = append(c.out, outFrame{op: opClose, data: closePayload(code, reason)})
			c.kick()
		}
		c.closeTimer = time.AfterFunc(c.srv.cfg.CloseTimeout, c.forceClose)
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
	if c.closeCode == 0 {
		c.closeCode = CloseGoingAway
		c.flags.Or(flagServerClosing)
	}
	c.tcpClosed = true
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
	c.kick()
}

func (c *Conn) pushFrame(f Frame) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for c.pendingFrames >= maxPendingFrames && !c.ended && c.closeCode == 0 {
		c.wait()
	}
	if c.ended || c.closeCode != 0 {
		return
	}
	c.inbox = append(c.inbox, inboxItem{kind: itemFrame, frame: f})
	c.pendingFrames++
	c.kick()
}

// peerClosed handles the client's close frame: answer it (if the client started the close) once
// the frames already queued are written, then end.
func (c *Conn) peerClosed(code int) {
	c.mu.Lock()
	if c.closeCode == 0 && !c.tcpClosed {
		payload := []byte(nil)
		if code != CloseNoStatus {
			payload = closePayload(code, "")
		}
		c.out = append(c.out, outFrame{op: opClose, data: payload})
		c.state = stateClosing
	}
	c.endLocked(code)
	c.mu.Unlock()
}

// end ends the connection after a read error: the socket is closed now.
func (c *Conn) end(code int) {
	c.mu.Lock()
	c.tcpClosed = true
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
	if c.closeCode != 0 {
		code = int(c.closeCode)
	}
	c.endCode = int32(code)
	c.inbox = append(c.inbox, inboxItem{kind: itemEnd})
	c.broadcast()
	c.kick()
}

// finish is the pump's last act: write what is left (the answer to a client's close), drop the
// socket, leave the layer, and run Disconnect.
func (c *Conn) finish() {
	c.flush()
	c.mu.Lock()
	c.state = stateClosed
	c.tcpClosed = true
	code := int(c.endCode)
	if c.closeTimer != nil {
		c.closeTimer.Stop()
	}
	c.out, c.outSpare, c.inboxSpare = nil, nil, nil
	c.mu.Unlock()
	_ = c.nc.Close()
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
