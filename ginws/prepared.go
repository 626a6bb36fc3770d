package ginws

import (
	"errors"
	"sync"
	"sync/atomic"
	"unicode/utf8"
)

// PreparedMessage is a WebSocket message framed once for many connections, the way gorilla's
// PreparedMessage is: every connection that sends it writes the same bytes, with no copy and no
// re-framing per connection. Build one per broadcast, send it to each recipient, and do not modify
// the payload afterwards. A PreparedMessage is safe for concurrent use.
//
// To connections that negotiated permessage-deflate (WithCompression) the message goes compressed,
// and it is compressed once, by the first connection that writes it, for all the others: without
// context takeover one compressed frame is valid for every connection. A connection that
// negotiated the server's context takeover (Compression.ContextTakeover) compresses it itself,
// against its own history.
type PreparedMessage struct {
	op    byte
	frame []byte // header and payload
	plain int    // payload length

	// The compressed frames, one per level asked for (nil frame: compression does not shrink
	// the message). zfirst is the first one, read without the lock; zmu guards zrest and makes
	// each level be compressed once.
	zfirst atomic.Pointer[zframe]
	zmu    sync.Mutex
	zrest  []*zframe
}

type zframe struct {
	level int
	frame []byte // header (RSV1 set) and compressed payload; nil: send the plain frame
}

func newPrepared(op byte, payload []byte) *PreparedMessage {
	return &PreparedMessage{op: op, plain: len(payload), frame: appendFrame(make([]byte, 0, len(payload)+maxHeaderLen), op, payload)}
}

// PrepareBinary frames b (copied once) as a binary message.
func PrepareBinary(b []byte) *PreparedMessage { return newPrepared(opBinary, b) }

// PrepareText frames s as a text message. s must be valid UTF-8.
func PrepareText(s string) (*PreparedMessage, error) {
	if !utf8.ValidString(s) {
		return nil, errors.New("ginws: PrepareText needs valid UTF-8; use PrepareBinary for bytes")
	}
	return newPrepared(opText, []byte(s)), nil
}

// SendPrepared sends a prepared message. Like the other sends it queues the frame and returns at
// once, and is safe from any goroutine.
func (c *Conn) SendPrepared(p *PreparedMessage) error {
	if p == nil {
		return errors.New("ginws: SendPrepared of a nil PreparedMessage")
	}
	return c.enqueue(outFrame{op: p.op, prep: p})
}

// frameFor returns the frame to write to a connection that negotiated d (nil: no compression).
func (p *PreparedMessage) frameFor(d *deflateParams) []byte {
	if !d.wants(p.plain) {
		return p.frame
	}
	if z := p.zfirst.Load(); z != nil && z.level == d.level {
		return z.or(p.frame)
	}
	p.zmu.Lock()
	defer p.zmu.Unlock()
	if z := p.zfirst.Load(); z != nil && z.level == d.level {
		return z.or(p.frame)
	}
	for _, z := range p.zrest {
		if z.level == d.level {
			return z.or(p.frame)
		}
	}
	z := &zframe{level: d.level, frame: compressFrame(nil, p.op, p.payload(), d.level)}
	if p.zfirst.Load() == nil {
		p.zfirst.Store(z)
	} else {
		p.zrest = append(p.zrest, z)
	}
	return z.or(p.frame)
}

// payload returns the message's payload, as sent uncompressed.
func (p *PreparedMessage) payload() []byte { return p.frame[len(p.frame)-p.plain:] }

func (z *zframe) or(plain []byte) []byte {
	if z.frame == nil {
		return plain
	}
	return z.frame
}
