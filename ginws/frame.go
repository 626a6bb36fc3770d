package ginws

import (
	"encoding/binary"
	"unicode/utf8"

	"ginws.dev/ginws/layer"
)

// WebSocket close codes (RFC 6455 §7.4) and the ones ginws uses.
const (
	CloseNormal          = 1000 // the consumer or the client closed normally
	CloseGoingAway       = 1001 // the server is shutting down (Server.Shutdown)
	CloseProtocolError   = 1002 // the client broke the WebSocket protocol
	CloseUnsupportedData = 1003 // a JSON consumer got a binary frame
	CloseNoStatus        = 1005 // the client's close frame carried no code (never sent)
	CloseAbnormal        = 1006 // the peer vanished or stopped answering pings (never sent)
	CloseInvalidPayload  = 1007 // invalid UTF-8 in a text frame, or malformed JSON
	ClosePolicyViolation = 1008 // a policy refused the client
	CloseMessageTooBig   = 1009 // a message exceeded Config.ReadLimit
	CloseInternalError   = 1011 // a handler failed or panicked, or an event had no handler

	// CloseSlowClient closes a client that cannot keep up: its outbound queue went over
	// Config.OutboundLimit, a write to it timed out, or its event queue filled while a write to it
	// was blocked. It is the policy-violation code, with the reason "slow client".
	CloseSlowClient = ClosePolicyViolation
)

// Frame opcodes.
const (
	opText   byte = 1
	opBinary byte = 2
	opClose  byte = 8
	opPing   byte = 9
	opPong   byte = 10
)

const maxHeaderLen = 10 // a server frame header: no mask

// outFrame is one frame waiting to be written: op and its payload data, or a prepared message
// (prep), framed already and shared with other connections.
//
// A relay frame (op opRelay) is an event for a RelayJSON handler, queued without running it
// (deliverRelayLocked): relay is the handler's index in Conn.events, env the event; the pump turns
// it into a prepared frame before writing it (encodeRelays), or into opDropped if build failed.
type outFrame struct {
	op    byte
	relay uint16
	data  []byte
	prep  *PreparedMessage
	env   *layer.Envelope
}

// Internal opcodes of queued frames that are not written as they are.
const (
	opRelay   byte = 0x40 // an event to encode with its relay (outFrame)
	opDropped byte = 0x41 // a relay frame whose build failed: written as nothing
)

func (f outFrame) size() int {
	if f.prep != nil {
		return len(f.prep.frame)
	}
	return len(f.data) + maxHeaderLen
}

// appendHeader appends the header of a final, unmasked frame carrying n payload bytes.
func appendHeader(dst []byte, op byte, n int) []byte {
	b0 := 0x80 | op
	switch {
	case n < 126:
		return append(dst, b0, byte(n))
	case n <= 0xFFFF:
		return binary.BigEndian.AppendUint16(append(dst, b0, 126), uint16(n))
	default:
		return binary.BigEndian.AppendUint64(append(dst, b0, 127), uint64(n))
	}
}

func appendFrame(dst []byte, op byte, payload []byte) []byte {
	return append(appendHeader(dst, op, len(payload)), payload...)
}

// closePayload builds a close frame payload; the reason is cut to fit a control frame.
func closePayload(code int, reason string) []byte {
	const maxReason = 123
	if len(reason) > maxReason {
		reason = reason[:maxReason]
		for len(reason) > 0 && !utf8.ValidString(reason) {
			reason = reason[:len(reason)-1]
		}
	}
	p := binary.BigEndian.AppendUint16(make([]byte, 0, 2+len(reason)), uint16(code))
	return append(p, reason...)
}

// validCloseCode reports whether code may travel in a close frame (RFC 6455 §7.4): sent by us,
// or received from a client.
func validCloseCode(code int) bool {
	switch {
	case code >= 3000 && code <= 4999:
		return true
	case code >= 1000 && code <= 1014:
		return code != 1004 && code != CloseNoStatus && code != CloseAbnormal
	}
	return false
}

// compressFrame appends to dst a frame carrying payload compressed (RSV1 set), or returns nil when
// compression would not make it shorter.
func compressFrame(dst []byte, op byte, payload []byte, level int) []byte {
	bp := writeBufPool.Get().(*[]byte)
	z, ok := appendDeflated((*bp)[:0], payload, level)
	var out []byte
	if ok {
		out = appendHeader(dst, op, len(z))
		out[len(dst)] |= rsv1
		out = append(out, z...)
	}
	if cap(z) <= 64<<10 {
		*bp = z[:0]
		writeBufPool.Put(bp)
	}
	return out
}

const rsv1 = 0x40
