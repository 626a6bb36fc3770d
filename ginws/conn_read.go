package ginws

import (
	"errors"
	"net"
	"sync"
	"time"
	"unicode/utf8"
)

// Reading. The reader goroutine parses client frames with frameParser from a buffer it borrows
// from a pool only while bytes are pending: an idle connection waits in a one-byte read into its
// Conn, on a shallow stack, and holds no read buffer at all. That — with the on-demand pump — is
// what keeps an idle connection at a few kilobytes.

const readChunk = 4096

var readBufPool = sync.Pool{New: func() any { b := make([]byte, readChunk); return &b }}

// readState is the reader goroutine's own state.
type readState struct {
	parser frameParser
	one    [1]byte   // the idle wait reads into this
	buf    *[]byte   // borrowed while bytes are pending; nil when idle
	r, w   int       // unread bytes are buf[r:w]
	window ctxWindow // the client's window, with its context takeover (deflate_ctx.go)
}

// readLoop reads the client's frames until the connection ends.
func (c *Conn) readLoop() {
	rs := &c.rs
	rs.parser.limit, rs.parser.deflate = c.readLimit, c.deflate != nil
	if c.deflate != nil {
		rs.window.size = c.deflate.clientWindow
	}
	for {
		if rs.buf == nil {
			// Idle: wait for the next byte without holding a buffer.
			n, err := c.nc.Read(rs.one[:])
			if n == 0 {
				if err == nil {
					continue
				}
				c.readEnded(err)
				return
			}
			rs.buf = readBufPool.Get().(*[]byte)
			(*rs.buf)[0] = rs.one[0]
			rs.r, rs.w = 0, 1
		}
		if !c.readFrames() {
			return
		}
	}
}

// readFrames parses the buffered bytes, reading more while a frame is incomplete, until the
// connection is between frames with nothing buffered (the buffer then goes back to the pool). The
// payload of a large frame is read straight into its message. It returns false when the connection
// ended.
//
//go:noinline
func (c *Conn) readFrames() bool {
	rs := &c.rs
	p := &rs.parser
	for {
		buf := *rs.buf
		if rs.r == rs.w {
			if !p.inFrame {
				readBufPool.Put(rs.buf)
				rs.buf = nil
				return true
			}
			rs.r, rs.w = 0, 0
			if p.left >= readChunk {
				n, err := c.nc.Read(p.space())
				if n > 0 {
					c.extendRead()
					ev, perr := p.wrote(n)
					if perr != nil {
						c.protocolError(perr, false)
						return false
					}
					if ev.kind != evNone && !c.onFrame(ev) {
						return false
					}
				}
				if err != nil && n == 0 {
					c.readEnded(err)
					return false
				}
				continue
			}
		} else {
			ev, used, need, perr := p.feed(buf[rs.r:rs.w])
			rs.r += used
			if perr != nil {
				c.protocolError(perr, ev.kind == evClose)
				return false
			}
			if ev.kind != evNone && !c.onFrame(ev) {
				return false
			}
			if need == 0 {
				continue
			}
			// An incomplete header or control frame (at most maxFrameHeader+125 bytes): make
			// room after the bytes already here, and read more.
			if rs.r > 0 {
				rs.w = copy(buf, buf[rs.r:rs.w])
				rs.r = 0
			}
		}
		n, err := c.nc.Read(buf[rs.w:])
		rs.w += n
		if err != nil && n == 0 {
			c.readEnded(err)
			return false
		}
	}
}

// onFrame acts on one parsed frame; false when the connection ended.
func (c *Conn) onFrame(ev frameEvent) bool {
	switch ev.kind {
	case evMessage:
		if c.msgLimit != nil && !c.msgLimit.Allow() {
			return c.overRate()
		}
		c.srv.messagesIn.Add(1)
		c.srv.bytesIn.Add(uint64(len(ev.data))) // as read off the wire (compressed, if it was)
		if ev.deflated {
			data, perr := inflateMessage(&c.rs.window, ev, c.readLimit)
			if perr != nil {
				c.protocolError(perr, false)
				return false
			}
			ev.data = data
		}
		c.pushFrame(ClientMessage{Binary: ev.binary, Data: ev.data})
		c.extendRead()
	case evPing:
		c.extendRead()
		c.pong(ev.data)
	case evPong:
		c.extendRead()
	case evClose:
		c.releaseRead()
		c.peerClosed(ev.code)
		return false
	}
	return true
}

// overRate applies Limits' policy to a message over the connection's budget: drop it, or close
// with 1008 once the earlier messages are handled. False when the reader is done.
func (c *Conn) overRate() bool {
	c.srv.messagesLimited.Add(1)
	if c.srv.cfg.Limits.DropMessages {
		c.extendRead()
		if !c.dropLogged {
			c.dropLogged = true
			c.Logger().Warn("ginws: client over its message rate; dropping its messages over the budget",
				"rate", c.srv.cfg.Limits.Messages.PerSecond, "burst", c.msgLimit.Burst())
		}
		return true
	}
	c.Logger().Warn("ginws: client over its message rate; closing", "rate", c.srv.cfg.Limits.Messages.PerSecond,
		"burst", c.msgLimit.Burst(), "close_code", errRateExceeded.Code)
	c.closeAfterPending(errRateExceeded)
	c.linger()
	return false
}

func (c *Conn) releaseRead() {
	rs := &c.rs
	if rs.buf != nil {
		readBufPool.Put(rs.buf)
		rs.buf = nil
	}
	rs.parser = frameParser{}
	rs.window = ctxWindow{}
}

// protocolError handles a client that broke the protocol or a limit. The messages it sent before
// the bad frame are still handled, and their replies written, before the close frame (see
// closeAfterPending). Then the reader waits for the client's answer to the close (see linger), or,
// when the bad frame was the client's own close frame, ends at once: the client sends nothing more.
func (c *Conn) protocolError(perr *CloseError, inCloseFrame bool) {
	switch perr.Code {
	case CloseMessageTooBig:
		if c.tooBig != nil {
			perr = c.tooBig
		}
		c.Logger().Info("ginws: message over ReadLimit (or the connection's WithReadLimit); closing", "read_limit", c.readLimit, "close_code", perr.Code)
	case CloseInvalidPayload:
		c.Logger().Info("ginws: invalid UTF-8 or compressed data from the client; closing with 1007", "what", perr.Reason)
	default:
		c.Logger().Info("ginws: protocol error; closing with 1002", "what", perr.Reason)
	}
	c.closeAfterPending(perr)
	if inCloseFrame {
		c.releaseRead()
		c.peerClosed(CloseNoStatus)
		return
	}
	c.linger()
}

// linger runs after the server decided to close for a protocol error: it reads on, skipping
// frames, until the client's close frame (the answer to ours), the end of its stream, or twice
// CloseTimeout (the close timer that closeWith starts cuts it shorter when the client does not
// answer). Closing the socket while the client is still sending — the rest of an oversized
// message, say — would make the kernel reset the connection, and a reset can destroy the close
// frame before the client reads it; the close code and reason would be lost.
func (c *Conn) linger() {
	rs := &c.rs
	rs.parser.skipFrom(true)
	if rs.buf == nil {
		rs.buf = readBufPool.Get().(*[]byte)
		rs.r, rs.w = 0, 0
	}
	_ = c.nc.SetReadDeadline(time.Now().Add(2 * c.srv.cfg.CloseTimeout))
	lost := false // the frames can no longer be followed: discard everything
	for {
		buf := *rs.buf
		if rs.r < rs.w && !lost {
			ev, used, need, perr := rs.parser.feed(buf[rs.r:rs.w])
			rs.r += used
			switch {
			case perr != nil:
				lost = true
				continue
			case ev.kind == evClose:
				c.releaseRead()
				c.peerClosed(ev.code)
				return
			case need == 0:
				continue
			}
			rs.w = copy(buf, buf[rs.r:rs.w])
			rs.r = 0
		} else {
			rs.r, rs.w = 0, 0
		}
		n, err := c.nc.Read(buf[rs.w:])
		rs.w += n
		if err != nil && n == 0 {
			c.releaseRead()
			c.end(CloseAbnormal)
			return
		}
	}
}

// readEnded ends the connection after a read error.
func (c *Conn) readEnded(err error) {
	c.releaseRead()
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		c.mu.Lock()
		closing := c.closeCode != 0
		c.mu.Unlock()
		if !closing {
			c.Logger().Info("ginws: client stopped answering pings; dropping it", "ping_timeout", c.srv.cfg.PingTimeout)
		}
	}
	c.end(CloseAbnormal)
}

// inflateMessage decompresses a compressed client message against the connection's read limit, and
// the client's window when it takes over context.
// A message that inflates past the limit is closed with 1009 (or WithTooBigClose's code) as soon as
// it does; data that is not valid DEFLATE is closed with 1007: RFC 7692 names no code, and the
// payload is not consistent with the message's type (RFC 6455 §7.4.1), as with invalid UTF-8 (node's
// ws does the same). A text message's UTF-8 is checked once inflated. Reader goroutine only.
func inflateMessage(w *ctxWindow, ev frameEvent, limit int64) ([]byte, *CloseError) {
	data, err := w.inflate(ev.data, limit)
	switch {
	case errors.Is(err, errInflatedTooBig):
		return nil, &CloseError{Code: CloseMessageTooBig, Reason: "message too big"}
	case err != nil:
		return nil, &CloseError{Code: CloseInvalidPayload, Reason: "invalid compressed data"}
	case !ev.binary && !utf8.Valid(data):
		return nil, &CloseError{Code: CloseInvalidPayload, Reason: "invalid UTF-8"}
	}
	return data, nil
}
