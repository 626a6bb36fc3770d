package ginws_test

// A Go rendition of the fuzzing client of Autobahn|Testsuite, sections 1 to 10, so that CI grades
// ginws the way the suite does. The cases themselves are data, in autobahn_cases_test.go.
//
// The client mirrors what the suite's client (autobahn-python 0.10.9 with failByDrop off) does and
// records:
//
//   - it sends the case's frames, masked, as the case builds them (any RSV, opcode, FIN, length);
//     frames sent together go out in one write, a "sync" frame or a chop in a write of its own
//     followed by a short pause, as the suite's reactor does;
//   - it records the messages and pongs the server sends (and the fail-fast "timeout" marks of
//     6.4.x), answers pings, and starts the closing handshake itself as soon as the events match
//     the expected ones (when the case expects the client to close);
//   - it answers a server's close frame with a close 1000, gives the server one second to answer
//     its own close and one second to drop TCP after the closing handshake, and otherwise drops the
//     connection itself;
//   - killAfter fails the connection with a close 1001, closeAfter sends a close without a code.
//
// Grading follows the suite's Case.onConnectionLost: the behavior is the expected outcome (OK,
// NON-STRICT) the received events equal, else FAILED; the close behavior is FAILED when the wrong
// endpoint started the closing handshake, UNCLEAN when it had to be clean and was not, WRONG CODE
// when the server's close code is not an expected one, FAILED BY CLIENT when the client had to drop
// TCP, else OK. The suite reports the two side by side; abResult.grade folds them into one: a case
// is OK only when both are (see grade for the details).

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha1"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/gin-gonic/gin"
	"github.com/gorilla/websocket"

	"ginws.dev/ginws"
)

// Grades, named as the suite names them.
const (
	abOK             = "OK"
	abNonStrict      = "NON-STRICT"
	abFailed         = "FAILED"
	abInformational  = "INFORMATIONAL"
	abWrongCode      = "WRONG CODE"
	abUnclean        = "UNCLEAN"
	abFailedByClient = "FAILED BY CLIENT"
)

// The client's timeouts: the suite's defaults, and ours where it has none.
const (
	abCloseHandshakeTimeout       = time.Second           // we sent a close: the server must answer by then
	abServerDropTimeout           = time.Second           // closing handshake done: the server must drop TCP by then
	abChopPause                   = 10 * time.Microsecond // after a chop or a "sync" frame (the suite's reactor delay)
	abPerfWaitCap                 = 60 * time.Second      // cap on a section 9 case's wait (the suite's go to 1000 s)
	abHangTimeout                 = 15 * time.Second      // last resort for a case the suite would leave hanging
	abHandshakeTimeout            = 10 * time.Second      // opening handshake
	abMaxServerFrame              = 64 << 20              // a longer frame from a server is a harness error
	abReadLimit                   = 32 << 20              // ginws's read limit: section 9 sends up to 16 MiB
	abSmallLimit                  = 512 << 10             // the read limit of the endpoints of the limited cases
	abOutboundLimit               = 64 << 20              // and its echo must not count as a slow client
	abOpCont, abOpText, abOpBin   = byte(0), byte(1), byte(2)
	abOpClose, abOpPing, abOpPong = byte(8), byte(9), byte(10)
)

// abCase is one case of the suite: what the client does once the connection is open and what it
// expects back.
type abCase struct {
	id    string
	desc  string
	steps []abStep
	// outcomes are the event lists that grade the case, best first (OK, then NON-STRICT if any).
	outcomes []abOutcome
	close    abCloseExp
	// suppressClose keeps the client from closing when the events match (the case closes itself).
	suppressClose bool
	// wrongCodeFails makes a WRONG CODE close behavior fail the case (section 7).
	wrongCodeFails bool
	// info marks a case whose outcome the spec leaves open: graded INFORMATIONAL.
	info bool
	// perf, for section 9: the behavior is decided by the echoes, not by outcomes.
	perf *abPerf
	// limited cases are not the suite's: they run against endpoints with a read limit of
	// abSmallLimit (see abLimitCases).
	limited bool
}

type abOutcome struct {
	grade  string
	events []abEvent
}

// abCloseExp is the suite's expectedClose.
type abCloseExp struct {
	byMe               bool  // the client starts the closing handshake
	codes              []int // close codes the server may send (sending none is also fine)
	clean              bool  // the close must be clean
	wrongEndpointFatal bool  // the server not starting the close fails the case (invalid UTF-8)
}

// abEvent is what the client records: a message, a pong, or a fail-fast case's timeout mark.
type abEvent struct {
	kind   string // "message", "pong" or "timeout"
	data   string // the payload, or the timeout's tag
	binary bool
}

func (e abEvent) String() string {
	switch e.kind {
	case "timeout":
		return "timeout " + e.data
	case "message":
		kind := "text"
		if e.binary {
			kind = "binary"
		}
		return kind + " " + abShow(e.data)
	}
	return e.kind + " " + abShow(e.data)
}

func abShow(s string) string {
	if len(s) <= 32 && utf8.ValidString(s) && !strings.ContainsFunc(s, func(r rune) bool { return r < ' ' }) {
		return fmt.Sprintf("%q", s)
	}
	return fmt.Sprintf("(%d bytes)", len(s))
}

func abEvents(evs []abEvent) string {
	parts := make([]string, len(evs))
	for i, e := range evs {
		parts[i] = e.String()
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

// abPerf is a section 9 case: count messages, each sent after the echo of the previous one; every
// echo must have the type and payload sent. The payload is made when the case runs.
type abPerf struct {
	op      byte
	pattern string // the payload is pattern repeated to size bytes
	size    int
	frag    int // send the message in fragments of this many bytes (0: one frame)
	chop    int // write the frame in chops of this many bytes
	count   int
	wait    time.Duration
}

// message returns the payload and the frames of one message.
func (p *abPerf) message() ([]byte, []abFrame) {
	payload := abRepeat(p.pattern, p.size)
	if p.frag > 0 {
		return payload, abFragments(p.op, payload, p.frag)
	}
	return payload, []abFrame{{op: p.op, payload: payload, chop: p.chop}}
}

type abStepKind uint8

const (
	abSend       abStepKind = iota // write frames
	abSendMsg                      // write one message of a section 9 case (made when sent)
	abPiece                        // write part of one frame (the header goes with the first part)
	abClose                        // start the closing handshake (the suite's sendClose/sendCloseFrame)
	abKillAfter                    // fail the connection (close 1001) after d unless it is closed
	abCloseAfter                   // send a close without a code after d unless it is closed
	abPause                        // resume the steps after d; with a tag, only if still open, recording it
)

type abStep struct {
	kind     abStepKind
	frames   []abFrame
	piece    *abFrame // abPiece: the frame, payload[from:to]
	msg      *abPerf  // abSendMsg
	from, to int
	code     int // abClose: -1 for no code
	reason   []byte
	d        time.Duration
	tag      string
}

// abFrame is a frame as the client writes it. payload is sent masked.
type abFrame struct {
	op      byte
	more    bool // FIN clear
	rsv     byte // the three RSV bits
	payload []byte
	chop    int  // write in chops of this many bytes, each followed by a pause
	sync    bool // write alone, followed by a pause
}

// encode appends the frame, masked with key.
func (f abFrame) encode(dst []byte, key [4]byte) []byte {
	b0 := f.op&0x0f | (f.rsv&7)<<4
	if !f.more {
		b0 |= 0x80
	}
	n := len(f.payload)
	switch {
	case n < 126:
		dst = append(dst, b0, 0x80|byte(n))
	case n <= 0xffff:
		dst = binary.BigEndian.AppendUint16(append(dst, b0, 0x80|126), uint16(n))
	default:
		dst = binary.BigEndian.AppendUint64(append(dst, b0, 0x80|127), uint64(n))
	}
	dst = append(dst, key[:]...)
	start := len(dst)
	dst = append(dst, f.payload...)
	abMask(key, dst[start:])
	return dst
}

func abMask(key [4]byte, b []byte) {
	if len(b) < 64 {
		for i := range b {
			b[i] ^= key[i&3]
		}
		return
	}
	// XOR with a block of the repeated key at a time: crypto/subtle does it in assembly, which
	// spares the race detector checking megabytes byte by byte.
	var block [4096]byte
	stream := block[:min(len(b)+3, len(block))&^3]
	copy(stream, key[:])
	for n := 4; n < len(stream); n *= 2 {
		copy(stream[n:], stream[:n])
	}
	for len(b) > 0 {
		b = b[subtle.XORBytes(b, b, stream[:min(len(b), len(stream))]):]
	}
}

func abNewKey() [4]byte {
	var k [4]byte
	binary.LittleEndian.PutUint32(k[:], rand.Uint32())
	return k
}

// abResult is how a case went against one server.
type abResult struct {
	behavior, result           string
	behaviorClose, resultClose string
	received                   []abEvent
	closedByMe, droppedByMe    bool
	wasClean                   bool
	remoteCode                 int // -1: the server sent no close code
	end                        string
	notes                      []string
	dur                        time.Duration
}

// grade folds the suite's two verdicts into one. INFORMATIONAL cases stay INFORMATIONAL. Otherwise
// a failed behavior is FAILED, and so is any close behavior other than OK — the suite shows those
// (WRONG CODE, UNCLEAN, FAILED BY CLIENT, FAILED) in its close column rather than in the case's
// grade, but each means the server closed with the wrong code, not cleanly, or not at all.
func (r abResult) grade() string {
	switch {
	case r.behavior == abInformational:
		return abInformational
	case r.behavior == abFailed, r.behaviorClose != abOK:
		return abFailed
	}
	return r.behavior
}

// why explains a result in one line.
func (r abResult) why() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s (%s); close %s (%s); received %s; ", r.behavior, r.result, r.behaviorClose, r.resultClose, abEvents(r.received))
	switch r.remoteCode {
	case -1:
		b.WriteString("no close code from the server")
	default:
		fmt.Fprintf(&b, "server close code %d", r.remoteCode)
	}
	switch {
	case r.closedByMe:
		b.WriteString(", closing handshake started by the client")
	case r.wasClean:
		b.WriteString(", closing handshake started by the server")
	default:
		b.WriteString(", no closing handshake")
	}
	fmt.Fprintf(&b, ", %s, %s, %v", map[bool]string{true: "clean", false: "not clean"}[r.wasClean], r.end, r.dur.Round(time.Millisecond))
	for _, n := range r.notes {
		b.WriteString("; " + n)
	}
	return b.String()
}

type abState uint8

const (
	abOpen abState = iota
	abClosing
	abClosed
)

type abTimerKind uint8

const (
	abTKill abTimerKind = iota
	abTCloseAfter
	abTCloseHandshake
	abTServerDrop
	abTResume
	abTHang
)

type abTimer struct {
	at   time.Time
	kind abTimerKind
	tag  string
}

type abInputKind uint8

const (
	abInMessage abInputKind = iota
	abInPing
	abInPong
	abInClose
	abInViolation
	abInEOF
)

// abInput is what the reader goroutine reports.
type abInput struct {
	kind    abInputKind
	data    []byte
	binary  bool
	code    int // abInClose: -1 when absent; abInViolation: the close code to fail with
	why     string
	err     error
	partial bool // abInEOF: the connection ended inside a frame
}

// abChunk is one write; pause is slept after it.
type abChunk struct {
	data  []byte
	pause bool
}

// abRun is one run of a case over one connection: the suite's protocol state and the case's.
type abRun struct {
	c       *abCase
	conn    net.Conn
	in      chan abInput
	jobs    chan []abChunk
	pending []abChunk
	pieces  map[*abFrame][]byte

	state                   abState
	closedByMe, droppedByMe bool
	wasClean                bool
	remoteCode              int
	received                []abEvent
	perfBehavior, perfWhy   string
	perfSent                int
	perfWant                []byte
	perfFrames              []abFrame
	timers                  []abTimer
	pc                      int
	start                   time.Time
	end                     string
	notes                   []string
}

// abPlay runs case c against the WebSocket server at wsURL.
func abPlay(c *abCase, wsURL string) (abResult, error) {
	conn, br, err := abDial(wsURL)
	if err != nil {
		return abResult{}, err
	}
	r := &abRun{
		c:          c,
		conn:       conn,
		in:         make(chan abInput, 64),
		jobs:       make(chan []abChunk, 1024),
		pieces:     map[*abFrame][]byte{},
		remoteCode: -1,
		start:      time.Now(),
	}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); abReadFrames(br, r.in) }()
	go func() { defer wg.Done(); abWriteChunks(conn, r.jobs) }()
	r.loop()
	close(r.jobs)
	_ = conn.Close()
	wg.Wait()
	return r.grade(), nil
}

// abDial opens a TCP connection and performs the opening handshake by hand.
func abDial(wsURL string) (net.Conn, *bufio.Reader, error) {
	u, err := url.Parse(wsURL)
	if err != nil {
		return nil, nil, err
	}
	conn, err := net.DialTimeout("tcp", u.Host, abHandshakeTimeout)
	if err != nil {
		return nil, nil, err
	}
	_ = conn.SetDeadline(time.Now().Add(abHandshakeTimeout))
	var nonce [16]byte
	binary.LittleEndian.PutUint64(nonce[:], rand.Uint64())
	binary.LittleEndian.PutUint64(nonce[8:], rand.Uint64())
	key := base64.StdEncoding.EncodeToString(nonce[:])
	req := "GET " + u.RequestURI() + " HTTP/1.1\r\nHost: " + u.Host + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: " + key + "\r\nSec-WebSocket-Version: 13\r\nUser-Agent: ginws-autobahn-test\r\n\r\n"
	if _, err := io.WriteString(conn, req); err != nil {
		conn.Close()
		return nil, nil, err
	}
	br := bufio.NewReaderSize(conn, 64<<10)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		conn.Close()
		return nil, nil, fmt.Errorf("handshake response: %w", err)
	}
	resp.Body.Close()
	sum := sha1.Sum([]byte(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
	if resp.StatusCode != http.StatusSwitchingProtocols || resp.Header.Get("Sec-WebSocket-Accept") != base64.StdEncoding.EncodeToString(sum[:]) {
		conn.Close()
		return nil, nil, fmt.Errorf("handshake refused: %s", resp.Status)
	}
	_ = conn.SetDeadline(time.Time{})
	return conn, br, nil
}

// abWriteChunks performs the writes, in order. After a failed write it only drains the queue.
func abWriteChunks(conn net.Conn, jobs <-chan []abChunk) {
	failed := false
	for job := range jobs {
		for _, ch := range job {
			if failed {
				break
			}
			if _, err := conn.Write(ch.data); err != nil {
				failed = true
				break
			}
			if ch.pause {
				time.Sleep(abChopPause)
			}
		}
	}
}

// abReadFrames parses the server's frames and reports messages (reassembled and checked), control
// frames, protocol violations and the end of the connection.
func abReadFrames(br *bufio.Reader, out chan<- abInput) {
	var msg []byte
	inMsg, msgBinary := false, false
	violation := func(code int, why string) {
		out <- abInput{kind: abInViolation, code: code, why: why}
		if _, err := io.Copy(io.Discard, br); err != nil {
			out <- abInput{kind: abInEOF, err: err}
		} else {
			out <- abInput{kind: abInEOF, err: io.EOF}
		}
	}
	for {
		var h [2]byte
		if n, err := io.ReadFull(br, h[:]); err != nil {
			out <- abInput{kind: abInEOF, err: err, partial: n > 0 || inMsg}
			return
		}
		fin, rsv, op := h[0]&0x80 != 0, h[0]>>4&7, h[0]&0x0f
		n := uint64(h[1] & 0x7f)
		switch {
		case h[1]&0x80 != 0:
			violation(1002, "masked server frame")
			return
		case rsv != 0:
			violation(1002, fmt.Sprintf("server frame with RSV %d", rsv))
			return
		case op >= 8 && (!fin || n > 125):
			violation(1002, "fragmented or long control frame from the server")
			return
		case op >= 8 && op > abOpPong, op < 8 && op > abOpBin:
			violation(1002, fmt.Sprintf("server frame with reserved opcode %d", op))
			return
		case op == abOpCont && !inMsg:
			violation(1002, "continuation frame outside a message from the server")
			return
		case op != abOpCont && op < 8 && inMsg:
			violation(1002, "new message inside a fragmented one from the server")
			return
		case op == abOpClose && n == 1:
			violation(1002, "close frame with a one-byte payload from the server")
			return
		}
		if n >= 126 {
			var ext [8]byte
			size := 2
			if n == 127 {
				size = 8
			}
			if _, err := io.ReadFull(br, ext[:size]); err != nil {
				out <- abInput{kind: abInEOF, err: err, partial: true}
				return
			}
			if size == 2 {
				n = uint64(binary.BigEndian.Uint16(ext[:2]))
			} else {
				n = binary.BigEndian.Uint64(ext[:])
			}
			if (size == 2 && n < 126) || (size == 8 && n < 1<<16) {
				violation(1002, "server frame length not minimally encoded")
				return
			}
			if n > abMaxServerFrame {
				violation(1009, fmt.Sprintf("server frame of %d bytes", n))
				return
			}
		}
		// A continuation is read straight into the message (this moves megabytes in section 9).
		var payload []byte
		if op == abOpCont {
			msg = slices.Grow(msg, int(n))
			payload = msg[len(msg) : len(msg)+int(n)]
		} else {
			payload = make([]byte, n)
		}
		if _, err := io.ReadFull(br, payload); err != nil {
			out <- abInput{kind: abInEOF, err: err, partial: true}
			return
		}
		switch op {
		case abOpPing:
			out <- abInput{kind: abInPing, data: payload}
			continue
		case abOpPong:
			out <- abInput{kind: abInPong, data: payload}
			continue
		case abOpClose:
			in := abInput{kind: abInClose, code: -1}
			if len(payload) >= 2 {
				in.code = int(binary.BigEndian.Uint16(payload))
				in.data = payload[2:]
			}
			out <- in
			continue
		case abOpText, abOpBin:
			msg, inMsg, msgBinary = payload, true, op == abOpBin
		default:
			msg = msg[:len(msg)+len(payload)]
		}
		if !fin {
			continue
		}
		inMsg = false
		if !msgBinary && !utf8.Valid(msg) {
			violation(1007, "invalid UTF-8 in a text message from the server")
			return
		}
		out <- abInput{kind: abInMessage, data: msg, binary: msgBinary}
		msg = nil
	}
}

// loop is the client's reactor: it runs the steps, handles the server's frames and the timers,
// until the connection is gone.
func (r *abRun) loop() {
	hang := abHangTimeout
	if r.c.perf != nil {
		hang += r.c.perf.wait
	}
	r.addTimer(hang, abTHang, "")
	r.runSteps()
	if r.c.perf != nil {
		r.perfWant, r.perfFrames = r.c.perf.message()
		r.sendPerfMessage()
	}
	r.flush()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		next := r.timers[0].at
		for _, tm := range r.timers[1:] {
			if tm.at.Before(next) {
				next = tm.at
			}
		}
		timer.Reset(time.Until(next))
		select {
		case in := <-r.in:
			if in.kind == abInEOF {
				r.lost(in)
				return
			}
			if r.state != abClosed {
				r.onInput(in)
			}
		case <-timer.C:
			r.fireTimers()
		}
		r.flush()
	}
}

func (r *abRun) addTimer(d time.Duration, kind abTimerKind, tag string) {
	r.timers = append(r.timers, abTimer{at: time.Now().Add(d), kind: kind, tag: tag})
}

func (r *abRun) cancelTimers(kind abTimerKind) {
	r.timers = slices.DeleteFunc(r.timers, func(tm abTimer) bool { return tm.kind == kind })
}

func (r *abRun) fireTimers() {
	now := time.Now()
	var due []abTimer
	r.timers = slices.DeleteFunc(r.timers, func(tm abTimer) bool {
		if !tm.at.After(now) {
			due = append(due, tm)
			return true
		}
		return false
	})
	if len(r.timers) == 0 { // keep the loop's timer list non-empty
		r.addTimer(time.Hour, abTHang, "")
	}
	for _, tm := range due {
		if r.state == abClosed {
			return
		}
		switch tm.kind {
		case abTKill:
			r.failConnection(1001, "Going Away")
		case abTCloseAfter:
			r.sendClose(-1, nil, false)
		case abTCloseHandshake:
			r.wasClean = false
			r.note("the server did not answer the client's close within %v", abCloseHandshakeTimeout)
			r.drop()
		case abTServerDrop:
			r.wasClean = false
			r.note("the server did not drop TCP within %v of the closing handshake", abServerDropTimeout)
			r.drop()
		case abTHang:
			r.wasClean = false
			r.note("the case hung: the client dropped the connection after %v", time.Since(r.start).Round(time.Second))
			r.drop()
		case abTResume:
			if tm.tag != "" {
				if r.state != abOpen {
					continue // the server failed the connection in time: the case stops here
				}
				r.received = append(r.received, abEvent{kind: "timeout", data: tm.tag})
			}
			r.runSteps()
		}
	}
}

// runSteps runs the case's steps up to the next pause.
func (r *abRun) runSteps() {
	for r.pc < len(r.c.steps) {
		s := &r.c.steps[r.pc]
		r.pc++
		switch s.kind {
		case abSend:
			for _, f := range s.frames {
				r.queueFrame(f)
			}
		case abSendMsg:
			_, frames := s.msg.message()
			for _, f := range frames {
				r.queueFrame(f)
			}
		case abPiece:
			enc, ok := r.pieces[s.piece]
			if !ok {
				enc = s.piece.encode(nil, abNewKey())
				r.pieces[s.piece] = enc
			}
			hdr := len(enc) - len(s.piece.payload)
			from := hdr + s.from
			if s.from == 0 {
				from = 0
			}
			r.queue(slices.Clone(enc[from:hdr+s.to]), false)
		case abClose:
			r.sendClose(s.code, s.reason, false)
		case abKillAfter:
			r.addTimer(s.d, abTKill, "")
		case abCloseAfter:
			r.addTimer(s.d, abTCloseAfter, "")
		case abPause:
			r.addTimer(s.d, abTResume, s.tag)
			return
		}
	}
}

// queueFrame queues a frame's bytes: alone or in chops when the frame says so, else appended to
// the write under construction, so that frames sent together leave in one write.
func (r *abRun) queueFrame(f abFrame) {
	enc := f.encode(nil, abNewKey())
	switch {
	case f.chop > 0:
		for len(enc) > 0 {
			n := min(f.chop, len(enc))
			r.pending = append(r.pending, abChunk{data: enc[:n], pause: true})
			enc = enc[n:]
		}
	case f.sync:
		r.pending = append(r.pending, abChunk{data: enc, pause: true})
	default:
		r.queue(enc, false)
	}
}

func (r *abRun) queue(b []byte, pause bool) {
	if n := len(r.pending); n > 0 && !r.pending[n-1].pause && !pause {
		r.pending[n-1].data = append(r.pending[n-1].data, b...)
		return
	}
	r.pending = append(r.pending, abChunk{data: b, pause: pause})
}

// flush hands the writes of this turn to the writer goroutine.
func (r *abRun) flush() {
	if len(r.pending) == 0 {
		return
	}
	if r.state != abClosed {
		r.jobs <- r.pending
	}
	r.pending = nil
}

// sendClose starts (or, as a reply, completes) the closing handshake; code -1 sends no code.
func (r *abRun) sendClose(code int, reason []byte, reply bool) {
	if r.state != abOpen {
		return
	}
	var p []byte
	if code >= 0 {
		p = binary.BigEndian.AppendUint16(nil, uint16(code))
	}
	r.queueFrame(abFrame{op: abOpClose, payload: append(p, reason...)})
	r.state = abClosing
	r.closedByMe = !reply
	if r.closedByMe {
		r.addTimer(abCloseHandshakeTimeout, abTCloseHandshake, "")
	}
}

// failConnection is the suite's failConnection without failByDrop: a close frame, or a drop when
// closing already.
func (r *abRun) failConnection(code int, reason string) {
	switch r.state {
	case abOpen:
		r.sendClose(code, []byte(reason), false)
	case abClosing:
		r.drop()
	}
}

// drop closes the TCP connection from the client's side.
func (r *abRun) drop() {
	if r.state == abClosed {
		return
	}
	r.droppedByMe = true
	r.state = abClosed
	r.pending = nil
	_ = r.conn.Close()
}

func (r *abRun) note(format string, args ...any) {
	r.notes = append(r.notes, fmt.Sprintf(format, args...))
}

func (r *abRun) onInput(in abInput) {
	switch in.kind {
	case abInMessage:
		if r.c.perf != nil {
			r.onPerfMessage(in)
			return
		}
		r.received = append(r.received, abEvent{kind: "message", data: string(in.data), binary: in.binary})
		r.finishWhenDone()
	case abInPing:
		if r.state == abOpen {
			r.queueFrame(abFrame{op: abOpPong, payload: in.data})
		}
	case abInPong:
		r.received = append(r.received, abEvent{kind: "pong", data: string(in.data)})
		if r.c.perf == nil {
			r.finishWhenDone()
		}
	case abInClose:
		r.remoteCode = in.code
		if in.code >= 0 && !abValidCloseCode(in.code) {
			r.note("the server sent the invalid close code %d", in.code)
			r.failConnection(1002, "invalid close code")
			return
		}
		if !utf8.Valid(in.data) {
			r.note("the server sent a close reason that is not UTF-8")
			r.failConnection(1007, "invalid close reason")
			return
		}
		switch r.state {
		case abClosing: // the answer to our close
			r.cancelTimers(abTCloseHandshake)
			r.wasClean = true
			r.addTimer(abServerDropTimeout, abTServerDrop, "")
		case abOpen: // the server closes: answer with 1000, and wait for it to drop TCP
			r.wasClean = true
			r.sendClose(1000, nil, true)
		}
	case abInViolation:
		r.note("the server broke the protocol: %s", in.why)
		r.failConnection(in.code, in.why)
	}
}

// abValidCloseCode is the suite's rule for close codes a peer may send.
func abValidCloseCode(code int) bool {
	switch {
	case code >= 3000 && code <= 4999:
		return true
	case code >= 1000 && code <= 1011:
		return code != 1004 && code != 1005 && code != 1006
	}
	return false
}

// finishWhenDone starts the closing handshake once the received events equal every expected outcome.
func (r *abRun) finishWhenDone() {
	for _, o := range r.c.outcomes {
		if !slices.Equal(r.received, o.events) {
			return
		}
	}
	if r.c.close.byMe && !r.c.suppressClose {
		r.sendClose(r.c.close.codes[0], nil, false)
	}
}

func (r *abRun) onPerfMessage(in abInput) {
	p := r.c.perf
	kind := map[bool]string{true: "binary", false: "text"}
	switch binary := p.op == abOpBin; {
	case in.binary != binary:
		r.perfBehavior, r.perfWhy = abFailed, fmt.Sprintf("expected a %s message, got a %s one", kind[binary], kind[in.binary])
	case !bytes.Equal(in.data, r.perfWant):
		r.perfBehavior, r.perfWhy = abFailed, fmt.Sprintf("echo %d of %d differs from what was sent (%d bytes, want %d)", r.perfSent, p.count, len(in.data), len(r.perfWant))
	case r.perfSent < p.count:
		r.sendPerfMessage()
		return
	default:
		r.perfBehavior, r.perfWhy = abOK, fmt.Sprintf("received %d echoes of %d bytes", p.count, p.size)
	}
	r.sendClose(1000, nil, false)
}

func (r *abRun) sendPerfMessage() {
	for _, f := range r.perfFrames {
		r.queueFrame(f)
	}
	r.perfSent++
}

// lost is the end of the connection.
func (r *abRun) lost(in abInput) {
	switch {
	case r.droppedByMe:
		r.end = "TCP dropped by the client"
	case errors.Is(in.err, syscall.ECONNRESET):
		r.end = "TCP reset by the server"
	case errors.Is(in.err, io.EOF), errors.Is(in.err, io.ErrUnexpectedEOF):
		r.end = "TCP closed by the server"
	default:
		r.end = fmt.Sprintf("TCP ended (%v)", in.err)
	}
	if in.partial && !r.droppedByMe {
		r.note("the connection ended inside a server frame or message")
	}
	r.state = abClosed
}

// grade is the suite's Case.onConnectionLost, with the per-case rules.
func (r *abRun) grade() abResult {
	c := r.c
	res := abResult{
		behavior: abFailed,
		received: r.received, closedByMe: r.closedByMe, droppedByMe: r.droppedByMe, wasClean: r.wasClean,
		remoteCode: r.remoteCode, end: r.end, notes: r.notes, dur: time.Since(r.start),
	}
	if c.perf != nil {
		res.behavior, res.result = abFailed, fmt.Sprintf("no complete echo within %v", c.perf.wait)
		if r.perfBehavior != "" {
			res.behavior, res.result = r.perfBehavior, r.perfWhy
		}
	}
	if len(c.outcomes) > 0 {
		res.result = "events differ from every expected outcome; OK needs " + abEvents(c.outcomes[0].events)
	}
	for _, o := range c.outcomes {
		if slices.Equal(r.received, o.events) {
			res.behavior, res.result = o.grade, "events as expected"
			if o.grade != abOK {
				res.result = "OK needs " + abEvents(c.outcomes[0].events)
			}
			break
		}
	}
	exp := c.close
	switch {
	case exp.byMe != r.closedByMe:
		res.behaviorClose, res.resultClose = abFailed, "the wrong endpoint started the closing handshake"
	case exp.clean && !r.wasClean:
		res.behaviorClose, res.resultClose = abUnclean, "the close had to be clean"
	case r.remoteCode >= 0 && !slices.Contains(exp.codes, r.remoteCode):
		res.behaviorClose, res.resultClose = abWrongCode, fmt.Sprintf("the close code should have been %v or none", exp.codes)
	case r.droppedByMe:
		res.behaviorClose, res.resultClose = abFailedByClient, "the client had to drop TCP"
	default:
		res.behaviorClose, res.resultClose = abOK, "properly closed"
	}
	if exp.wrongEndpointFatal && exp.byMe != r.closedByMe {
		res.behavior, res.result = abFailed, "the server did not fail the connection"
	}
	if c.wrongCodeFails && res.behaviorClose == abWrongCode {
		res.behavior, res.result = abFailed, res.resultClose
	}
	if c.info {
		res.result = fmt.Sprintf("informational (would grade %s)", res.behavior)
		res.behavior, res.behaviorClose = abInformational, abInformational
	}
	return res
}

// The servers under test.

// abEcho is ginws's echo consumer: text back as text, binary as binary.
type abEcho struct {
	ginws.WebsocketConsumer
	limit int64
}

func (e *abEcho) Connect(ctx context.Context) error {
	return e.Accept(ginws.WithReadLimit(e.limit), ginws.WithOutboundLimit(abOutboundLimit))
}

func (e *abEcho) Receive(ctx context.Context, f ginws.ClientMessage) error {
	if f.Binary {
		return e.SendBinary(f.Data)
	}
	return e.SendText(f.Text())
}

// abGinwsServer serves ginws's echo consumer at /echo (read limit abReadLimit) and /limited
// (abSmallLimit), and returns the server's ws:// URL.
func abGinwsServer(t *testing.T) string {
	srv := ginws.New(ginws.Config{Logger: discard()})
	r := gin.New()
	r.GET("/echo", srv.Mount(func() ginws.Consumer { return &abEcho{limit: abReadLimit} }))
	r.GET("/limited", srv.Mount(func() ginws.Consumer { return &abEcho{limit: abSmallLimit} }))
	ts := httptest.NewServer(r)
	t.Cleanup(ts.Close)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("ginws shutdown: %v", err)
		}
		if n := ginws.BadTransitions(srv); n != 0 {
			t.Errorf("the connection state machine refused %d transitions: a runtime bug", n)
		}
	})
	return "ws" + strings.TrimPrefix(ts.URL, "http")
}

// abGorillaServer serves the reference: gorilla/websocket echoing with NextReader and NextWriter,
// text checked for UTF-8 as it streams through (gorilla leaves that to the application), as
// gorilla's own Autobahn server does. /limited has a read limit of abSmallLimit, other paths none.
func abGorillaServer(t *testing.T) string {
	up := websocket.Upgrader{ReadBufferSize: 4096, WriteBufferSize: 4096, CheckOrigin: func(*http.Request) bool { return true }}
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		conn, err := up.Upgrade(w, req, nil)
		if err != nil {
			return
		}
		defer conn.Close()
		if req.URL.Path == "/limited" {
			conn.SetReadLimit(abSmallLimit)
		}
		for {
			mt, rd, err := conn.NextReader()
			if err != nil {
				return
			}
			wr, err := conn.NextWriter(mt)
			if err != nil {
				return
			}
			if mt == websocket.TextMessage {
				rd = &abUTF8Reader{r: rd}
			}
			if _, err := io.Copy(wr, rd); err != nil {
				if errors.Is(err, errAbInvalidUTF8) {
					msg := websocket.FormatCloseMessage(websocket.CloseInvalidFramePayloadData, "")
					_ = conn.WriteControl(websocket.CloseMessage, msg, time.Now().Add(time.Second))
				}
				return
			}
			if err := wr.Close(); err != nil {
				return
			}
		}
	}))
	t.Cleanup(ts.Close)
	return "ws" + strings.TrimPrefix(ts.URL, "http")
}

var errAbInvalidUTF8 = errors.New("invalid UTF-8")

// abUTF8Reader checks UTF-8 as bytes go through, failing on the first byte that cannot start or
// continue a valid sequence, and at the end on an unfinished one.
type abUTF8Reader struct {
	r      io.Reader
	need   int  // continuation bytes still due
	lo, hi byte // the range of the next one
}

func (v *abUTF8Reader) Read(p []byte) (int, error) {
	n, err := v.r.Read(p)
	if v.need == 0 && utf8.Valid(p[:n]) {
		return n, err // the usual case, checked without a loop per byte
	}
	for _, b := range p[:n] {
		if v.need > 0 {
			if b < v.lo || b > v.hi {
				return 0, errAbInvalidUTF8
			}
			v.need, v.lo, v.hi = v.need-1, 0x80, 0xbf
			continue
		}
		switch {
		case b < 0x80:
		case b >= 0xc2 && b <= 0xdf:
			v.need, v.lo, v.hi = 1, 0x80, 0xbf
		case b == 0xe0:
			v.need, v.lo, v.hi = 2, 0xa0, 0xbf
		case b == 0xed:
			v.need, v.lo, v.hi = 2, 0x80, 0x9f
		case b >= 0xe1 && b <= 0xef:
			v.need, v.lo, v.hi = 2, 0x80, 0xbf
		case b == 0xf0:
			v.need, v.lo, v.hi = 3, 0x90, 0xbf
		case b >= 0xf1 && b <= 0xf3:
			v.need, v.lo, v.hi = 3, 0x80, 0xbf
		case b == 0xf4:
			v.need, v.lo, v.hi = 3, 0x80, 0x8f
		default:
			return 0, errAbInvalidUTF8
		}
	}
	if err == io.EOF && v.need > 0 {
		return 0, errAbInvalidUTF8
	}
	return n, err
}

type abRow struct {
	c             *abCase
	gorilla, mine abResult
	err           error
}

// How many cases run at once: most cases spend their time waiting for the server or for one of
// the suite's timers, so more run at once than go test's -parallel (GOMAXPROCS) would allow.
// Section 9 moves megabytes through the race detector and would starve the others, whose timers
// are as short as half a second: it runs after them, one case at a time (which also bounds the
// memory: a 16 MiB case holds a few hundred megabytes under the race detector).
const (
	abWorkers     = 8
	abPerfWorkers = 1
)

// TestAutobahn runs the suite's cases of sections 1 to 10 against ginws and against gorilla's echo
// server, and fails for every case gorilla passes (OK) and ginws does not.
//
// Each case is a subtest, so -run selects cases (TestAutobahn/6.4 runs the fail-fast ones). A
// subtest queues its case and waits in parallel for the result; the queue runs once every subtest
// is registered: the cases of sections 1-7 and 10 abWorkers at a time, then section 9 and the
// limit cases abPerfWorkers at a time.
func TestAutobahn(t *testing.T) {
	ginwsURL, gorillaURL := abGinwsServer(t), abGorillaServer(t)
	cases := abCases()
	rows := make([]*abRow, len(cases))
	var queue, perfQueue []func()
	for i := range cases {
		c := &cases[i]
		row, done := &abRow{c: c}, make(chan struct{})
		run := func() {
			defer close(done)
			var wg sync.WaitGroup
			var gerr, merr error
			wg.Add(2)
			path := "/echo"
			if c.limited {
				path = "/limited"
			}
			go func() { defer wg.Done(); row.gorilla, gerr = abPlay(c, gorillaURL+path) }()
			go func() { defer wg.Done(); row.mine, merr = abPlay(c, ginwsURL+path) }()
			wg.Wait()
			if err := errors.Join(gerr, merr); err != nil {
				row.err = fmt.Errorf("gorilla: %v; ginws: %v", gerr, merr)
			}
		}
		t.Run(c.id, func(t *testing.T) {
			if c.perf != nil || c.limited {
				perfQueue = append(perfQueue, run)
			} else {
				queue = append(queue, run)
			}
			rows[i] = row
			t.Parallel()
			<-done
			if row.err != nil {
				t.Fatalf("%s: harness: %v", c.id, row.err)
			}
			g, m := row.gorilla.grade(), row.mine.grade()
			switch {
			case g == abOK && m != abOK:
				t.Errorf("%s (%s): ginws %s where gorilla is OK: %s", c.id, c.desc, m, row.mine.why())
			case m != abOK && m != abInformational:
				t.Logf("%s (%s): ginws %s, gorilla %s too: %s", c.id, c.desc, m, g, row.mine.why())
			}
			if g != abOK && g != abInformational {
				t.Logf("%s (%s): gorilla %s: %s", c.id, c.desc, g, row.gorilla.why())
			}
		})
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		abRunAll(queue, abWorkers)
		abRunAll(perfQueue, abPerfWorkers)
	}()
	t.Cleanup(func() {
		wg.Wait()
		abReport(t, rows)
	})
}

// abRunAll runs fns, n at a time.
func abRunAll(fns []func(), n int) {
	next := make(chan func())
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for fn := range next {
				fn()
			}
		}()
	}
	for _, fn := range fns {
		next <- fn
	}
	close(next)
	wg.Wait()
}

// abReport prints the grade table: every case with -v, else the cases not OK on either server.
func abReport(t *testing.T, rows []*abRow) {
	var b strings.Builder
	count := map[string]int{}
	ran := 0
	for _, r := range rows {
		if r != nil && r.err == nil {
			ran++
		}
	}
	fmt.Fprintf(&b, "Autobahn|Testsuite sections 1-10: %d cases\n%-12s %-14s %-14s %s\n", ran, "case", "gorilla", "ginws", "why (for each server not OK)")
	for _, r := range rows {
		if r == nil || r.err != nil {
			continue // not selected, or the harness failed
		}
		g, m := r.gorilla.grade(), r.mine.grade()
		count["gorilla "+g]++
		count["ginws "+m]++
		var whys []string
		if m != abOK {
			whys = append(whys, "ginws: "+r.mine.why())
		}
		if g != abOK {
			whys = append(whys, "gorilla: "+r.gorilla.why())
		}
		why := strings.Join(whys, " | ")
		if why == "" && !testing.Verbose() {
			continue
		}
		if r.c.perf != nil && why == "" {
			why = fmt.Sprintf("gorilla %v, ginws %v", r.gorilla.dur.Round(time.Millisecond), r.mine.dur.Round(time.Millisecond))
		}
		fmt.Fprintf(&b, "%-12s %-14s %-14s %s\n", r.c.id, g, m, why)
	}
	keys := make([]string, 0, len(count))
	for k := range count {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		fmt.Fprintf(&b, "%s: %d\n", k, count[k])
	}
	t.Log(b.String())
}
