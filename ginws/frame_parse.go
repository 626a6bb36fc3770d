package ginws

import (
	"encoding/binary"
	"slices"
	"unicode/utf8"
)

// frameParser turns client bytes into WebSocket events (RFC 6455 §5), for a server: client frames
// must be masked, control frames are short and unfragmented, and a message (all its fragments) may
// not exceed limit bytes. The reserved bits must be 0, except RSV1 on the first frame of a data
// message when permessage-deflate was negotiated (deflate): it marks the message as compressed
// (RFC 7692 §6). A compressed message is reported as it came (its UTF-8 is checked once inflated,
// by the reader), and may take a little more than limit bytes, room for deflate's overhead on data
// that does not shrink; the reader applies limit to its inflated size. It does no I/O, so it
// can be tested and fuzzed on its own; the reader feeds it the bytes it has.
//
// The payload of a data frame is taken as it arrives, not when the frame is whole: the parser
// unmasks it into the message and checks its UTF-8 piece by piece, so that invalid text fails the
// connection at the first bad byte (RFC 6455 §8.1), even in the middle of a frame. Every check that
// the header allows (reserved bits, opcodes, masking, lengths, the read limit) is made before any
// payload is read, so a client cannot make the server buffer a frame it will refuse. A control
// frame (at most 125 bytes) is parsed once it is whole.
//
// After a protocol error the parser can be put in skip mode: it then only finds frame boundaries,
// reporting the client's close frame and discarding everything else, so that the server can wait for
// the client's answer to its close frame without parsing data it has stopped trusting.
type frameParser struct {
	limit   int64
	deflate bool // permessage-deflate was negotiated: RSV1 may mark a compressed message

	// The data frame whose payload is being read.
	inFrame bool
	fin     bool
	key     [4]byte // the masking key, rotated so that key[0] applies to the next payload byte
	left    int64   // payload bytes of the frame still to come

	// The message being assembled, over one or more frames.
	inMsg bool
	msgOp byte // opText or opBinary
	zmsg  bool // the message is compressed (RSV1 on its first frame)
	msg   []byte
	utf8  utf8Stream

	skip      bool // skip mode: find frame boundaries and close frames only
	skipClose bool // skip mode: the frame being skipped is a (too long) close frame
}

type eventKind uint8

const (
	evNone    eventKind = iota // bytes were taken, nothing complete yet
	evMessage                  // a complete text or binary message
	evPing
	evPong
	evClose
)

type frameEvent struct {
	kind     eventKind
	binary   bool
	deflated bool   // evMessage: data is compressed (permessage-deflate)
	data     []byte // message payload (owned by the caller) or control payload (aliases the input)
	code     int    // evClose: the close code (CloseNoStatus when absent)
}

// maxFrameHeader is the longest client frame header: 2 + 8 (length) + 4 (mask).
const maxFrameHeader = 14

// firstAlloc is the most a message's buffer gets before its bytes arrive: a frame announcing a large
// payload gets a buffer that grows as the payload comes, not one of the announced size.
const firstAlloc = 64 << 10

// feed parses the start of b. It returns the event completed by the bytes it took (evNone when none
// was), and used, how many bytes of b it took. When it can take nothing until more bytes arrive (a
// frame header, or a control frame, is incomplete), it returns need, how many bytes b must hold in
// all (at least). When the client broke the protocol or a limit, it returns a *CloseError with the
// code to close with; the parser must then not be fed again, except in skip mode (see skipFrom).
//
// Payload bytes taken are unmasked into the message; b is modified only where a control frame's
// payload is unmasked in place (the event's data aliases it).
func (p *frameParser) feed(b []byte) (ev frameEvent, used, need int, err *CloseError) {
	if p.skip {
		return p.skipFeed(b)
	}
	if p.inFrame {
		n := int(min(int64(len(b)), p.left))
		ev, err = p.take(b[:n])
		return ev, n, 0, err
	}
	if len(b) < 2 {
		return ev, 0, 2, nil
	}
	b0, b1 := b[0], b[1]
	fin, op := b0&0x80 != 0, b0&0x0f
	switch {
	case b0&0x30 != 0:
		return ev, 0, 0, protocolError("reserved bits set")
	case b0&0x40 != 0 && !p.deflate:
		return ev, 0, 0, protocolError("RSV1 set without a negotiated extension")
	case b0&0x40 != 0 && (op == 0 || op >= opClose):
		return ev, 0, 0, protocolError("RSV1 set on a continuation or control frame")
	case b1&0x80 == 0:
		return ev, 0, 0, protocolError("client frame not masked")
	case op > opBinary && op < opClose || op > opPong:
		return ev, 0, 0, protocolError("reserved opcode")
	}
	hdr, length := 2, uint64(b1&0x7f)
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
			return ev, 0, 0, protocolError("length not minimally encoded")
		}
	case 127:
		length = binary.BigEndian.Uint64(b[2:])
		if length>>63 != 0 {
			return ev, 0, 0, protocolError("length has its top bit set")
		}
		if length < 1<<16 {
			return ev, 0, 0, protocolError("length not minimally encoded")
		}
	}
	var key [4]byte
	copy(key[:], b[hdr:hdr+4])
	hdr += 4

	if op >= opClose {
		return p.control(b, op, fin, hdr, length, key)
	}
	switch {
	case op == 0 && !p.inMsg:
		return ev, 0, 0, protocolError("continuation without a message")
	case op != 0 && p.inMsg:
		return ev, 0, 0, protocolError("new message inside a fragmented one")
	}
	so := int64(len(p.msg)) // what the message holds so far (0 for a new message)
	limit := p.limit
	if b0&0x40 != 0 || op == 0 && p.zmsg {
		limit += limit>>4 + 1024 // deflate's worst case is 5 bytes per 64 KiB stored block
	}
	if length > uint64(limit) || so+int64(length) > limit {
		return ev, 0, 0, &CloseError{Code: CloseMessageTooBig, Reason: "message too big"}
	}
	if op != 0 {
		p.inMsg, p.msgOp, p.zmsg = true, op, b0&0x40 != 0
		p.msg = make([]byte, 0, min(length, firstAlloc))
	}
	p.inFrame, p.fin, p.key, p.left = true, fin, key, int64(length)
	n := int(min(int64(len(b)-hdr), p.left))
	ev, err = p.take(b[hdr : hdr+n])
	return ev, hdr + n, 0, err
}

// control parses a control frame whose header (hdr bytes) is at the start of b.
func (p *frameParser) control(b []byte, op byte, fin bool, hdr int, length uint64, key [4]byte) (ev frameEvent, used, need int, err *CloseError) {
	switch {
	case !fin:
		return ev, 0, 0, protocolError("fragmented control frame")
	case length > 125:
		return ev, 0, 0, protocolError("control frame too long")
	}
	total := hdr + int(length)
	if len(b) < total {
		return ev, 0, total, nil
	}
	payload := b[hdr:total]
	maskBytes(key, payload)
	switch op {
	case opPing:
		return frameEvent{kind: evPing, data: payload}, total, 0, nil
	case opPong:
		return frameEvent{kind: evPong, data: payload}, total, 0, nil
	}
	ev = frameEvent{kind: evClose, code: CloseNoStatus}
	switch {
	case len(payload) == 1:
		return ev, total, 0, protocolError("one-byte close payload")
	case len(payload) >= 2:
		ev.code = int(binary.BigEndian.Uint16(payload))
		if !validCloseCode(ev.code) {
			return ev, total, 0, protocolError("invalid close code")
		}
		if !utf8.Valid(payload[2:]) {
			return ev, total, 0, &CloseError{Code: CloseInvalidPayload, Reason: "invalid UTF-8 in close reason"}
		}
	}
	return ev, total, 0, nil
}

// take adds the next masked payload bytes of the current data frame to the message.
func (p *frameParser) take(b []byte) (frameEvent, *CloseError) {
	start := len(p.msg)
	p.msg = append(p.msg, b...)
	return p.absorb(start)
}

// space returns where the reader may read the next payload bytes of the current data frame
// directly, sparing a copy for large frames; nil when no data frame is being read. The buffer grows
// with what has arrived (never to a size only announced), up to the frame's end.
func (p *frameParser) space() []byte {
	if p.skip || !p.inFrame || p.left == 0 {
		return nil
	}
	if cap(p.msg) == len(p.msg) {
		p.msg = slices.Grow(p.msg, int(min(p.left, int64(max(len(p.msg), readChunk)))))
	}
	n := int(min(int64(cap(p.msg)-len(p.msg)), p.left))
	return p.msg[len(p.msg) : len(p.msg)+n]
}

// wrote takes n bytes the reader read into space().
func (p *frameParser) wrote(n int) (frameEvent, *CloseError) {
	start := len(p.msg)
	p.msg = p.msg[:start+n]
	return p.absorb(start)
}

// absorb unmasks and checks msg[start:], the payload bytes just added, and completes the frame (and
// the message, on its last frame) when they were its last.
func (p *frameParser) absorb(start int) (frameEvent, *CloseError) {
	chunk := p.msg[start:]
	maskBytes(p.key, chunk)
	if k := len(chunk) & 3; k != 0 {
		p.key = [4]byte{p.key[k&3], p.key[(k+1)&3], p.key[(k+2)&3], p.key[(k+3)&3]}
	}
	p.left -= int64(len(chunk))
	text := p.msgOp == opText
	check := text && !p.zmsg
	if check && !p.utf8.write(chunk) {
		return frameEvent{}, &CloseError{Code: CloseInvalidPayload, Reason: "invalid UTF-8"}
	}
	if p.left > 0 {
		return frameEvent{}, nil
	}
	p.inFrame = false
	if !p.fin {
		return frameEvent{}, nil
	}
	if check && !p.utf8.complete() {
		return frameEvent{}, &CloseError{Code: CloseInvalidPayload, Reason: "invalid UTF-8"}
	}
	data, z := p.msg, p.zmsg
	p.inMsg, p.msg, p.zmsg = false, nil, false
	return frameEvent{kind: evMessage, binary: !text, data: data, deflated: z}, nil
}

// skipFrom switches the parser to skip mode after a protocol error. midFrame tells whether the
// error struck inside a data frame's payload (whose rest is skipped) rather than in a header (the
// refused frame is then the next thing to skip).
func (p *frameParser) skipFrom(midFrame bool) {
	left := int64(0)
	if midFrame && p.inFrame {
		left = p.left
	}
	*p = frameParser{skip: true, left: left, deflate: p.deflate}
}

// skipFeed is feed in skip mode: frame headers are read only for their lengths (reserved bits,
// opcodes and masking no longer matter), payloads are discarded, and a close frame is reported
// as evClose (with its code when it has a valid one). A length no real frame has (top bit set) is
// an error: the stream cannot be followed any further.
func (p *frameParser) skipFeed(b []byte) (ev frameEvent, used, need int, err *CloseError) {
	if p.left > 0 {
		n := int(min(int64(len(b)), p.left))
		p.left -= int64(n)
		if p.left == 0 && p.skipClose {
			return frameEvent{kind: evClose, code: CloseNoStatus}, n, 0, nil
		}
		return ev, n, 0, nil
	}
	if len(b) < 2 {
		return ev, 0, 2, nil
	}
	hdr, length := 2, uint64(b[1]&0x7f)
	switch length {
	case 126:
		hdr += 2
	case 127:
		hdr += 8
	}
	masked := b[1]&0x80 != 0
	if masked {
		hdr += 4
	}
	if len(b) < hdr {
		return ev, 0, hdr, nil
	}
	switch length {
	case 126:
		length = uint64(binary.BigEndian.Uint16(b[2:]))
	case 127:
		length = binary.BigEndian.Uint64(b[2:])
		if length>>63 != 0 {
			return ev, 0, 0, protocolError("length has its top bit set")
		}
	}
	if b[0]&0x0f != opClose || length > 125 {
		// A close frame too long to be valid is still the client's close: it is reported once
		// skipped.
		p.left, p.skipClose = int64(length), b[0]&0x0f == opClose
		if p.left == 0 && p.skipClose {
			return frameEvent{kind: evClose, code: CloseNoStatus}, hdr, 0, nil
		}
		return ev, hdr, 0, nil
	}
	total := hdr + int(length)
	if len(b) < total {
		return ev, 0, total, nil
	}
	ev = frameEvent{kind: evClose, code: CloseNoStatus}
	if length >= 2 {
		payload := b[hdr:total]
		if masked {
			var key [4]byte
			copy(key[:], b[hdr-4:hdr])
			maskBytes(key, payload)
		}
		if code := int(binary.BigEndian.Uint16(payload)); validCloseCode(code) {
			ev.code = code
		}
	}
	return ev, total, 0, nil
}

func protocolError(reason string) *CloseError {
	return &CloseError{Code: CloseProtocolError, Reason: reason}
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
