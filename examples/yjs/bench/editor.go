package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

// editor is one benchmark client: one connection, one goroutine typing (type_) and one reading
// (read). What it receives is checked span by span against what the other editors sent.
type editor struct {
	run    *loadRun
	index  int
	client uint32
	conn   *websocket.Conn
	wmu    sync.Mutex // gorilla allows one writer at a time

	synced   chan struct{}
	readDone chan struct{}

	// next[i] is the next keystroke of editor i this editor expects; ahead holds spans that
	// arrived before an earlier one (a server may reorder across a resync).
	next       []uint64
	ahead      []span
	deliveries atomic.Uint64
	echoes     atomic.Uint64
	frames     atomic.Uint64
}

func (l *loadRun) connect(ctx context.Context, i int) (*editor, error) {
	d := websocket.Dialer{HandshakeTimeout: 10 * time.Second, ReadBufferSize: 16 << 10, WriteBufferSize: 4 << 10}
	conn, resp, err := d.DialContext(ctx, l.cfg.URL, http.Header{})
	if err != nil {
		if resp != nil {
			return nil, fmt.Errorf("dial %s: %w (HTTP %d)", l.cfg.URL, err, resp.StatusCode)
		}
		return nil, fmt.Errorf("dial %s: %w", l.cfg.URL, err)
	}
	conn.SetReadLimit(64 << 20)
	e := &editor{
		run: l, index: i, client: uint32(firstClient + i), conn: conn,
		synced: make(chan struct{}), readDone: make(chan struct{}),
		next: make([]uint64, l.cfg.Editors),
	}
	// Sync step 1 with an empty state vector: "send me the whole document".
	if err := e.write(frame(msgSync, syncStep1, []byte{0})); err != nil {
		conn.Close()
		return nil, err
	}
	go e.read()
	return e, nil
}

func (e *editor) write(msg []byte) error {
	e.wmu.Lock()
	defer e.wmu.Unlock()
	return e.conn.WriteMessage(websocket.BinaryMessage, msg)
}

// type_ sends keystrokes while the window allows, until stop.
func (e *editor) type_(ctx context.Context, stop time.Time) error {
	a := e.run.authors[e.index]
	w := int64(e.run.cfg.Window)
	timer := time.NewTimer(time.Until(stop))
	defer timer.Stop()
	for k := int64(0); ; k++ {
		for k-a.doneCount() >= w {
			select {
			case <-a.space:
			case <-timer.C:
				return nil
			case <-e.run.failed:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		if !time.Now().Before(stop) {
			return nil
		}
		a.sent.Store(k + 1)
		if err := e.write(keystroke(e.client, uint64(k), 'a'+byte(k%26))); err != nil {
			a.sent.Store(k)
			return fmt.Errorf("editor %d: write: %w", e.index, err)
		}
	}
}

// read handles the server's messages until the connection closes.
func (e *editor) read() {
	defer close(e.readDone)
	var spans []span
	buf := make([]byte, 0, 4<<10)
	synced := false
	for {
		msg, err := e.readMessage(buf[:0])
		buf = msg[:0]
		if err != nil {
			if e.run.err() == nil && !isClosing(err) {
				e.run.fail(fmt.Errorf("editor %d: read: %w", e.index, err))
			}
			return
		}
		e.frames.Add(1)
		r := reader{b: msg}
		typ, err := r.uint()
		if err != nil {
			e.run.fail(fmt.Errorf("editor %d: %w", e.index, err))
			return
		}
		if typ != msgSync {
			continue // awareness, auth, custom messages: not counted
		}
		sub, err := r.uint()
		if err != nil {
			e.run.fail(fmt.Errorf("editor %d: %w", e.index, err))
			return
		}
		payload, err := r.bytes()
		if err != nil {
			e.run.fail(fmt.Errorf("editor %d: %w", e.index, err))
			return
		}
		switch sub {
		case syncStep1:
			// The server asks what it is missing. Everything this editor typed went to the server
			// directly, so an empty update is an honest answer for the benchmark.
			if err := e.write(frame(msgSync, syncStep2, []byte{0, 0})); err != nil {
				return
			}
			continue
		case syncStep2, syncUpdate:
		default:
			e.run.fail(fmt.Errorf("editor %d: unknown sync message type %d", e.index, sub))
			return
		}
		spans, err = updateSpans(spans[:0], payload)
		if err != nil {
			e.run.fail(fmt.Errorf("editor %d: relayed update: %w", e.index, err))
			return
		}
		for _, s := range spans {
			if err := e.got(s); err != nil {
				e.run.fail(fmt.Errorf("editor %d: %w", e.index, err))
				return
			}
		}
		if sub == syncStep2 && !synced {
			synced = true
			close(e.synced)
		}
	}
}

// readMessage reads the next message into buf, reusing its memory.
func (e *editor) readMessage(buf []byte) ([]byte, error) {
	_, r, err := e.conn.NextReader()
	if err != nil {
		return buf, err
	}
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
	}
}

// got records a span of keystrokes this editor received.
func (e *editor) got(s span) error {
	i := int(s.client) - firstClient
	if i < 0 || i >= len(e.next) || s.client > 0xffffffff {
		return fmt.Errorf("update from client %d, which is none of the editors", s.client)
	}
	if i == e.index {
		e.echoes.Add(s.end - s.start)
		return nil
	}
	if s.start > e.next[i] {
		e.ahead = append(e.ahead, s)
		return nil
	}
	if s.end <= e.next[i] {
		return nil // already had these: a duplicate
	}
	e.advance(i, s.end)
	for progress := true; progress && len(e.ahead) > 0; {
		progress = false
		for j := 0; j < len(e.ahead); j++ {
			a := e.ahead[j]
			if int(a.client)-firstClient != i || a.start > e.next[i] {
				continue
			}
			if a.end > e.next[i] {
				e.advance(i, a.end)
			}
			e.ahead = append(e.ahead[:j], e.ahead[j+1:]...)
			j--
			progress = true
		}
	}
	return nil
}

func (e *editor) advance(author int, to uint64) {
	from := e.next[author]
	if sent := uint64(e.run.authors[author].sent.Load()); to > sent {
		e.run.fail(fmt.Errorf("editor %d received keystroke %d of editor %d, which sent only %d", e.index, to-1, author, sent))
		return
	}
	e.next[author] = to
	e.deliveries.Add(to - from)
	e.run.authors[author].received(from, to, int32(e.run.cfg.Editors-1))
}

func isClosing(err error) bool {
	var ce *websocket.CloseError
	return errors.As(err, &ce) || errors.Is(err, websocket.ErrCloseSent) || strings.Contains(err.Error(), "use of closed network connection")
}
