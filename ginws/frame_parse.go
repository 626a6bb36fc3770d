package ginws

import (
	"encoding/binary"
	"unicode/utf8"
)

// frameParser turns client bytes into WebSocket events (RFC 6455 §5), for a server: client frames
// must be masked, extensions are not negotiated (RSV bits must be 0), control frames are short and
// unfragmented, and a message (all its fragments) may not exceed limit bytes. It does no I/O, so it
// can be tested and fuzzed on its own; the reader feeds it buffered bytes.
type frameParser struct {
	limit int64

	inMsg bool   // a fragmented message is being assembled
	msgOp byte   // its opcode (text or binary)
	msg   []byte // its payload so far
}

type eventKind uint8

const (
	evNone    eventKind = iota // a continuation fragment was absorbed
	evMessage                  // a complete text or binary message
	evPing
	evPong
	evClose
)

type frameEvent struct {
	kind   eventKind
	binary bool
	data   []byte // message payload (owned by the caller) or control payload (aliases the input)
	code   int    // evClose: the close code (CloseNoStatus when absent)
}

// maxFrameHeader is the longest client frame header: 2 + 8 (length) + 4 (mask).
const maxFrameHeader = 14

// next parses the frame at the start of b. When b does not hold the whole frame, it returns need,
// the number of bytes the frame needs in all (or, while the header is incomplete, at least). When
// the client broke the protocol or a limit, it returns a *CloseError with the code to close with.
// Otherwise it returns the event and how many bytes of b the frame used; payload bytes of b are
// unmasked in place.
func (p *frameParser) next(b []byte) (ev frameEvent, used, need int, err *CloseError) {
	if len(b) < 2 {
		return ev, 0, 2, nil
	}
	b0, b1 := b[0], b[1]
	fin := b0&0x80 != 0
	if b0&0x70 != 0 {
		return ev, 0, 0, &CloseError{Code: CloseProtocolError, Reason: "reserved bits set"}
	}
	op := b0 & 0x0f
	if b1&0x80 == 0 {
		return ev, 0, 0, &CloseError{Code: CloseProtocolError, Reason: "client frame not masked"}
	}
	hdr := 2
	length := uint64(b1 & 0x7f)
	switch length {
	case 126:
		hdr += 2
	case 127:
		hdr += 8
	}
	if len(b) < hdr+4 {
		return ev, 0, hdr + 4, nil
	}
	switch length {
	case 126:
		length = uint64(binary.BigEndian.Uint16(b[2:]))
		if length < 126 {
			return ev, 0, 0, &CloseError{Code: CloseProtocolError, Reason: "length not minimally encoded"}
		}
	case 127:
		length = binary.BigEndian.Uint64(b[2:])
		if length>>63 != 0 {
			return ev, 0, 0, &CloseError{Code: CloseProtocolError, Reason: "length has its top bit set"}
		}
		if length < 1<<16 {
			return ev, 0, 0, &CloseError{Code: CloseProtocolError, Reason: "length not minimally encoded"}
		}
	}
	var mask [4]byte
	copy(mask[:], b[hdr:hdr+4])
	hdr += 4

	control := op >= 8
	if control {
		if !fin {
			return ev, 0, 0, &CloseError{Code: CloseProtocolError, Reason: "fragmented control frame"}
		}
		if length > 125 {
			return ev, 0, 0, &CloseError{Code: CloseProtocolError, Reason: "control frame too long"}
		}
	} else {
		so := int64(len(p.msg))
		if !p.inMsg {
			so = 0
		}
		if length > uint64(p.limit) || so+int64(length) > p.limit {
			return ev, 0, 0, &CloseError{Code: CloseMessageTooBig, Reason: "message too big"}
		}
	}
	total := hdr + int(length)
	if len(b) < total {
		return ev, 0, total, nil
	}
	payload := b[hdr:total]
	maskBytes(mask, payload)

	switch op {
	case 0: // continuation
		if !p.inMsg {
			return ev, 0, 0, &CloseError{Code: CloseProtocolError, Reason: "continuation without a message"}
		}
		p.msg = append(p.msg, payload...)
		if !fin {
			return frameEvent{kind: evNone}, total, 0, nil
		}
		data, binary := p.msg, p.msgOp == opBinary
		p.inMsg, p.msg = false, nil
		if !binary && !utf8.Valid(data) {
			return ev, 0, 0, &CloseError{Code: CloseInvalidPayload, Reason: "invalid UTF-8"}
		}
		return frameEvent{kind: evMessage, binary: binary, data: data}, total, 0, nil
	case opText, opBinary:
		if p.inMsg {
			return ev, 0, 0, &CloseError{Code: CloseProtocolError, Reason: "new message inside a fragmented one"}
		}
		if !fin {
			p.inMsg, p.msgOp = true, op
			p.msg = append(make([]byte, 0, len(payload)*2), payload...)
			return frameEvent{kind: evNone}, total, 0, nil
		}
		if op == opText && !utf8.Valid(payload) {
			return ev, 0, 0, &CloseError{Code: CloseInvalidPayload, Reason: "invalid UTF-8"}
		}
		data := append(make([]byte, 0, len(payload)), payload...)
		return frameEvent{kind: evMessage, binary: op == opBinary, data: data}, total, 0, nil
	case opClose:
		ev = frameEvent{kind: evClose, code: CloseNoStatus}
		switch {
		case len(payload) == 1:
			return ev, 0, 0, &CloseError{Code: CloseProtocolError, Reason: "one-byte close payload"}
		case len(payload) >= 2:
			ev.code = int(binary.BigEndian.Uint16(payload))
			if !validCloseCode(ev.code) {
				return ev, 0, 0, &CloseError{Code: CloseProtocolError, Reason: "invalid close code"}
			}
			if !utf8.Valid(payload[2:]) {
				return ev, 0, 0, &CloseError{Code: CloseInvalidPayload, Reason: "invalid UTF-8 in close reason"}
			}
		}
		return ev, total, 0, nil
	case opPing:
		return frameEvent{kind: evPing, data: payload}, total, 0, nil
	case opPong:
		return frameEvent{kind: evPong, data: payload}, total, 0, nil
	}
	return ev, 0, 0, &CloseError{Code: CloseProtocolError, Reason: "unknown opcode"}
}

// maskBytes applies the client's masking key to b in place.
func maskBytes(key [4]byte, b []byte) {
	k := binary.LittleEndian.Uint32(key[:])
	k64 := uint64(k) | uint64(k)<<32
	i := 0
	for ; i+8 <= len(b); i += 8 {
		binary.LittleEndian.PutUint64(b[i:], binary.LittleEndian.Uint64(b[i:])^k64)
	}
	for ; i < len(b); i++ {
		b[i] ^= key[i&3]
	}
}
