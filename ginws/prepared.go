package ginws

import (
	"errors"
	"unicode/utf8"
)

// PreparedMessage is a WebSocket message framed once for many connections, the way gorilla's
// PreparedMessage is: every connection that sends it writes the same bytes, with no copy and no
// re-framing per connection. Build one per broadcast, send it to each recipient, and do not modify
// the payload afterwards. A PreparedMessage is safe for concurrent use.
type PreparedMessage struct {
	op    byte
	frame []byte // header and payload
}

// PrepareBinary frames b (copied once) as a binary message.
func PrepareBinary(b []byte) *PreparedMessage {
	return &PreparedMessage{op: opBinary, frame: appendFrame(make([]byte, 0, len(b)+maxHeaderLen), opBinary, b)}
}

// PrepareText frames s as a text message. s must be valid UTF-8.
func PrepareText(s string) (*PreparedMessage, error) {
	if !utf8.ValidString(s) {
		return nil, errors.New("ginws: PrepareText needs valid UTF-8; use PrepareBinary for bytes")
	}
	return &PreparedMessage{op: opText, frame: appendFrame(make([]byte, 0, len(s)+maxHeaderLen), opText, []byte(s))}, nil
}

// SendPrepared sends a prepared message. Like the other sends it queues the frame and returns at
// once, and is safe from any goroutine.
func (c *Conn) SendPrepared(p *PreparedMessage) error {
	if p == nil {
		return errors.New("ginws: SendPrepared of a nil PreparedMessage")
	}
	return c.enqueue(outFrame{op: p.op, framed: true, data: p.frame})
}
