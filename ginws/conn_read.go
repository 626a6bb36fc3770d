package ginws

import (
	"errors"
	"net"
	"sync"
	"time"
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
	one    [1]byte // the idle wait reads into this
	buf    *[]byte // borrowed while bytes are pending; nil when idle
	big    []byte  // a frame larger than a pooled buffer, while it is read
	r, w   int     // unread bytes are buf[r:w]
}

// readLoop reads the client's frames until the connection ends.
func (c *Conn) readLoop() {
	rs := &c.rs
	rs.parser.limit = c.readLimit
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

// readFrames handles the buffered frames, reading more while a frame is incomplete, until the
// buffer is drained (then it goes back to the pool). It returns false when the connection ended.
//
//go:noinline
func (c *Conn) readFrames() bool {
	rs := &c.rs
	for rs.buf != nil {
		b := (*rs.buf)[rs.r:rs.w]
		if rs.big != nil {
			b = rs.big
		}
		ev, used, need, perr := rs.parser.next(b)
		if perr != nil {
			c.protocolClose(perr)
			return false
		}
		if need > 0 {
			if err := c.fill(need); err != nil {
				c.readEnded(err)
				return false
			}
			continue
		}
		if rs.big != nil {
			rs.big = nil
		} else {
			rs.r += used
		}
		if !c.onFrame(ev) {
			return false
		}
		if rs.big == nil && rs.r == rs.w {
			readBufPool.Put(rs.buf)
			rs.buf = nil
		}
	}
	return true
}

// fill reads until the pending frame has need bytes. A frame bigger than a pooled buffer is read
// into a buffer of its own size (bounded by ReadLimit, checked by the parser first).
func (c *Conn) fill(need int) error {
	rs := &c.rs
	if need > readChunk {
		if rs.big == nil {
			rs.big = make([]byte, 0, need)
			rs.big = append(rs.big, (*rs.buf)[rs.r:rs.w]...)
			rs.r = rs.w
		}
		for len(rs.big) < need {
			n, err := c.nc.Read(rs.big[len(rs.big):need])
			rs.big = rs.big[:len(rs.big)+n]
			if err != nil && len(rs.big) < need {
				return err
			}
		}
		return nil
	}
	buf := *rs.buf
	if rs.r+need > len(buf) {
		copy(buf, buf[rs.r:rs.w])
		rs.w -= rs.r
		rs.r = 0
	}
	for rs.w-rs.r < need {
		n, err := c.nc.Read(buf[rs.w:])
		rs.w += n
		if err != nil && rs.w-rs.r < need {
			return err
		}
	}
	return nil
}

// onFrame acts on one parsed frame; false when the connection ended.
func (c *Conn) onFrame(ev frameEvent) bool {
	switch ev.kind {
	case evMessage:
		c.pushFrame(Frame{Binary: ev.binary, Data: ev.data})
		c.extendRead()
	case evPing:
		c.extendRead()
		c.mu.Lock()
		if !c.tcpClosed && (c.state == stateOpen || c.state == stateClosing) {
			c.out = append(c.out, outFrame{op: opPong, data: append([]byte(nil), ev.data...)})
			c.kick()
		}
		c.mu.Unlock()
	case evPong:
		c.extendRead()
	case evClose:
		c.releaseRead()
		c.peerClosed(ev.code)
		return false
	}
	return true
}

func (c *Conn) releaseRead() {
	rs := &c.rs
	if rs.buf != nil {
		readBufPool.Put(rs.buf)
		rs.buf = nil
	}
	rs.big, rs.parser.msg = nil, nil
}

// extendRead pushes the read deadline (the dead-peer timer) back after a frame or a pong. It is
// refreshed only when less than three quarters of the wait is left, which spares a timer update
// per frame: a silent peer is dropped after between 3/4 and all of PingInterval+PingTimeout.
func (c *Conn) extendRead() {
	wait := int64(c.srv.readWait)
	if wait <= 0 {
		return
	}
	now := monoNow()
	if c.readDeadline-now < wait*3/4 {
		c.readDeadline = now + wait
		_ = c.nc.SetReadDeadline(monoTime(c.readDeadline))
	}
}

// protocolClose closes a client that broke the protocol or a limit: a close frame with the code,
// then the client's remaining bytes are drained (they can no longer be parsed).
func (c *Conn) protocolClose(perr *CloseError) {
	c.releaseRead()
	switch perr.Code {
	case CloseMessageTooBig:
		if c.tooBig != nil {
			perr = c.tooBig
		}
		c.Logger().Info("ginws: message over ReadLimit (or the connection's WithReadLimit); closing", "read_limit", c.readLimit, "close_code", perr.Code)
	case CloseInvalidPayload:
		c.Logger().Info("ginws: invalid UTF-8 from the client; closing with 1007", "what", perr.Reason)
	default:
		c.Logger().Info("ginws: protocol error; closing with 1002", "what", perr.Reason)
	}
	c.closeWith(perr.Code, perr.Reason)
	c.drain()
	c.end(perr.Code)
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

// drain reads and discards what the client still sends after a close we sent for a protocol error,
// until the client goes quiet, closes, or CloseTimeout passes — so that closing the socket with
// unread data does not reset the connection before the client has read the close frame.
func (c *Conn) drain() {
	end := time.Now().Add(c.srv.cfg.CloseTimeout)
	bp := readBufPool.Get().(*[]byte)
	defer readBufPool.Put(bp)
	for total := 0; total < 1<<20; {
		quiet := time.Now().Add(drainQuiet)
		if quiet.After(end) {
			quiet = end
		}
		_ = c.nc.SetReadDeadline(quiet)
		n, err := c.nc.Read(*bp)
		total += n
		if err != nil {
			return
		}
	}
}

// drainQuiet is how long a client must stay silent for drain to stop early.
const drainQuiet = 200 * time.Millisecond
