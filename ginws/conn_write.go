package ginws

import (
	"errors"
	"net"
	"sync"
	"time"
)

// Writing. Sends queue frames in c.out (any goroutine, never blocking); the pump takes the whole
// queue and writes it with one system call. A client is judged slow — and closed — when more than
// its outbound limit waits, when a write to it stays blocked past WriteTimeout, or when its event
// queue fills while a write has been blocked for a while.

// enqueue queues a frame for the client.
func (c *Conn) enqueue(f outFrame) error {
	size := f.size()
	c.mu.Lock()
	switch c.stateNow() {
	case stateOpen, statePeerEnded:
	case stateHandshake:
		c.mu.Unlock()
		return ErrNotAccepted
	default:
		c.mu.Unlock()
		return ErrClosed
	}
	switch {
	case c.cut:
		c.mu.Unlock()
		return ErrClosed
	case size > c.outboundLimit:
		// Not a slow client: this message could never fit. It is dropped for this connection
		// only, and the connection stays open (see TooLargeError).
		limit := c.outboundLimit
		c.mu.Unlock()
		c.srv.tooLarge.Add(1)
		return &TooLargeError{Size: size, Limit: limit}
	case c.outBytes+size > c.outboundLimit:
		c.slowLocked("outbound queue over OutboundLimit")
		c.mu.Unlock()
		return ErrSlowClient
	}
	c.out = outPool.push(c.out, f)
	c.outBytes += size
	c.kick()
	c.mu.Unlock()
	return nil
}

// takeOutLocked takes the frames queued for the client and marks a write under way. ok is false
// when there is nothing to write, or the socket is gone (the frames are dropped). Callers hold
// c.mu; the pump is running.
func (c *Conn) takeOutLocked() (out []outFrame, now int64, ok bool) {
	out = c.out
	if len(out) == 0 {
		return nil, 0, false
	}
	c.out, c.outSpare, c.outBytes, c.outGuessed, c.pongQueued = c.outSpare, nil, 0, 0, false
	if c.cut {
		return out, 0, false
	}
	c.pump = pumpWriting
	now = monoNow()
	c.writeStart = now
	return out, now, true
}

// flush writes every queued frame now (the pump's mid-batch and final writes).
func (c *Conn) flush() {
	c.mu.Lock()
	out, now, ok := c.takeOutLocked()
	c.mu.Unlock()
	if !ok {
		return
	}
	err := c.writeOut(out, now)
	c.mu.Lock()
	c.pump = pumpRunning
	c.broadcast()
	c.recycleOutLocked(out)
	c.mu.Unlock()
	if err != nil {
		c.writeFailed(err)
	}
}

// recycleOutLocked keeps a written queue as the spare one, or gives its array back. Callers hold
// c.mu.
func (c *Conn) recycleOutLocked(out []outFrame) {
	if c.outSpare == nil {
		clear(out)
		c.outSpare = out[:0]
		return
	}
	outPool.put(out)
}

var writeBufPool = sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}

// writeOut encodes the relay frames of out and writes out. A relay whose build failed closes the
// connection once the frames before it are written (a close frame follows them). Pump goroutine
// only, outside c.mu.
func (c *Conn) writeOut(out []outFrame, now int64) error {
	env, rerr := c.encodeRelays(out)
	if rerr != nil {
		// Closed before the write, not after it: the connection leaves the open state now, so
		// nothing more is relayed or sent while out is written, and the relay frames queued since
		// out was taken — events after the failed one — are dropped with the rest of its batch,
		// as a failed handler's later events are never handled.
		c.failed("event", env.Type(), env.Group(), rerr)
		c.dropQueuedRelays()
	}
	return c.write(out, now)
}

// dropQueuedRelays drops the relay frames waiting in c.out, once the connection has left the
// open state (no more can be queued). Pump goroutine only.
func (c *Conn) dropQueuedRelays() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stateNow() == stateOpen {
		return
	}
	for i := range c.out {
		if c.out[i].op == opRelay {
			c.out[i] = outFrame{op: opDropped}
		}
	}
}

// write sends frames with one system call, or with one per OutboundLimit (at least 64 KB) of
// bytes when the batch is larger: relay frames count at their true size only once encoded, so a
// batch of them can be, and the connection's write buffer stays near OutboundLimit, as the
// handler path's flushes keep its queue. Pump goroutine only, outside c.mu. The write deadline is
// refreshed only when less than half of WriteTimeout is left, which spares a timer update per
// write: a write to a client that stopped reading fails after between WriteTimeout/2 and
// WriteTimeout.
func (c *Conn) write(out []outFrame, now int64) error {
	c.srv.framesWritten.Add(uint64(len(out)))
	if len(out) == 1 && out[0].prep != nil && !c.zw.on() {
		return c.writeBytes(out[0].prep.frameFor(c.deflate), now) // shared bytes, no copy
	}
	closing := out[len(out)-1].op == opClose // a close frame is always the last one queued
	bp := writeBufPool.Get().(*[]byte)
	buf := (*bp)[:0]
	chunk := max(c.outboundLimit, 64<<10)
	for _, f := range out {
		if f.op == opDropped {
			continue
		}
		if len(buf) >= chunk {
			if err := c.writeBytes(buf, now); err != nil {
				return err // the buffer is the garbage collector's
			}
			buf, now = buf[:0], monoNow()
		}
		if f.op == opPing && c.zw.on() {
			c.zw.pinged()
		}
		switch {
		case f.prep != nil && c.zw.on():
			// With context takeover the group's frame cannot serve: the message goes through
			// this connection's compressor, in its turn.
			if payload := f.prep.payload(); c.deflate.wants(len(payload)) {
				buf = c.zw.appendFrame(buf, f.prep.op, payload)
				break
			}
			buf = append(buf, f.prep.frame...)
		case f.prep != nil:
			buf = append(buf, f.prep.frameFor(c.deflate)...)
		case f.op < opClose && c.zw.on() && c.deflate.wants(len(f.data)):
			buf = c.zw.appendFrame(buf, f.op, f.data)
		case f.op < opClose && c.deflate.wants(len(f.data)):
			if z := compressFrame(buf, f.op, f.data, c.deflate.level); z != nil {
				buf = z
				break
			}
			buf = appendFrame(buf, f.op, f.data)
		default:
			buf = appendFrame(buf, f.op, f.data)
		}
	}
	var err error
	if len(buf) > 0 {
		err = c.writeBytes(buf, now)
	}
	if cap(buf) <= 64<<10 {
		*bp = buf[:0]
		writeBufPool.Put(bp)
	}
	if err == nil && closing {
		c.closeWritten = true
	}
	return err
}

// writeBytes writes b with one system call, first moving the write deadline if less than half of
// WriteTimeout is left. Pump goroutine only.
func (c *Conn) writeBytes(b []byte, now int64) error {
	c.srv.writes.Add(1)
	if timeout := int64(c.srv.cfg.WriteTimeout); c.writeDeadline-now < timeout/2 {
		c.writeDeadline = now + timeout
		_ = c.nc.SetWriteDeadline(monoTime(c.writeDeadline))
	}
	n, err := c.nc.Write(b)
	c.srv.bytesOut.Add(uint64(n))
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

// slowLocked closes a client that cannot keep up: what is queued for it is dropped and a close
// frame (CloseSlowClient, "slow client") is queued in its place. If a write to the client is under
// way, the close frame waits behind it; the write's deadline (WriteTimeout) and the close timer
// (CloseTimeout) bound that wait. Whether the close frame was written is logged when the
// connection ends (finish): a client whose socket never drained sees 1006, not 1008. Callers hold
// c.mu.
func (c *Conn) slowLocked(why string) {
	if c.stateNow() != stateOpen || c.cut {
		return
	}
	c.srv.slowClients.Add(1)
	c.slowWhy = why
	clear(c.out)
	c.out, c.outBytes, c.outGuessed, c.pongQueued = c.out[:0], 0, 0, false
	c.closeLocked(CloseSlowClient, "slow client")
}
