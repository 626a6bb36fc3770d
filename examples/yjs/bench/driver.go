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

// LoadConfig describes one load run against one y-websocket room.
type LoadConfig struct {
	// URL is the room's WebSocket URL, e.g. ws://127.0.0.1:8001/yjs/bench. Required.
	URL string
	// Editors is how many clients type into the room. Optional. Default 50.
	Editors int
	// Duration is how long editors keep typing; the run then waits for every keystroke to reach
	// every other editor. Optional. Default 10 s.
	Duration time.Duration
	// Window is how many of an editor's keystrokes may be on their way (not yet seen by all the
	// other editors) before it waits. Optional. Default 16.
	Window int
	// DrainTimeout bounds the wait for the last keystrokes after typing stops. Optional.
	// Default 30 s.
	DrainTimeout time.Duration
	// CPU, if set, returns the server's CPU time so far; the run reports CPU per relayed update.
	CPU func() (time.Duration, error)
}

// LoadResult is what a load run measured.
type LoadResult struct {
	Editors    int
	Keystrokes uint64        // updates the editors sent
	Deliveries uint64        // keystrokes received by editors other than their author
	Echoes     uint64        // keystrokes received back by their author (servers may or may not echo)
	Elapsed    time.Duration // from the first keystroke until every one had reached every editor
	CPU        time.Duration // server CPU time (user+system) over Elapsed; 0 if not measured
	Frames     uint64        // frames the editors received
}

// PerSecond is deliveries per second.
func (r LoadResult) PerSecond() float64 { return float64(r.Deliveries) / r.Elapsed.Seconds() }

// CPUPerDelivery is server CPU time per delivered keystroke.
func (r LoadResult) CPUPerDelivery() time.Duration {
	if r.Deliveries == 0 {
		return 0
	}
	return r.CPU / time.Duration(r.Deliveries)
}

// firstClient is the Yjs client ID of editor 0; editor i is firstClient+i. Large, like the random
// 32-bit IDs real clients pick, so IDs take as many bytes on the wire as real ones.
const firstClient = 0x6b8b4567

// Load runs editors against cfg.URL and checks that every keystroke reached every other editor.
func Load(ctx context.Context, cfg LoadConfig) (LoadResult, error) {
	if cfg.Editors <= 0 {
		cfg.Editors = 50
	}
	if cfg.Duration <= 0 {
		cfg.Duration = 10 * time.Second
	}
	if cfg.Window <= 0 {
		cfg.Window = 16
	}
	if cfg.DrainTimeout <= 0 {
		cfg.DrainTimeout = 30 * time.Second
	}
	if cfg.Editors < 2 {
		return LoadResult{}, errors.New("bench: need at least 2 editors")
	}
	run := &loadRun{cfg: cfg, authors: make([]*author, cfg.Editors), failed: make(chan struct{})}
	for i := range run.authors {
		run.authors[i] = &author{counts: make([]int32, cfg.Window), space: make(chan struct{}, 1)}
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	editors := make([]*editor, 0, cfg.Editors)
	defer func() {
		for _, e := range editors {
			e.conn.Close()
		}
		for _, e := range editors {
			<-e.readDone
		}
	}()
	for i := range cfg.Editors {
		e, err := run.connect(ctx, i)
		if err != nil {
			return LoadResult{}, fmt.Errorf("editor %d: %w", i, err)
		}
		editors = append(editors, e)
	}
	for i, e := range editors {
		select {
		case <-e.synced:
		case <-run.failed:
			return LoadResult{}, run.err()
		case <-time.After(10 * time.Second):
			return LoadResult{}, fmt.Errorf("editor %d: no sync step 2 from the server within 10 s", i)
		case <-ctx.Done():
			return LoadResult{}, ctx.Err()
		}
	}

	cpu0, err := run.cpu()
	if err != nil {
		return LoadResult{}, err
	}
	start := time.Now()
	stopTyping := time.Now().Add(cfg.Duration)
	var wg sync.WaitGroup
	for _, e := range editors {
		wg.Add(1)
		go func() {
			defer wg.Done()
			run.fail(e.type_(ctx, stopTyping))
		}()
	}
	wg.Wait()
	if err := run.err(); err != nil {
		return LoadResult{}, err
	}
	if err := run.drain(ctx, cfg.DrainTimeout); err != nil {
		return LoadResult{}, err
	}
	elapsed := time.Since(start)
	cpu1, err := run.cpu()
	if err != nil {
		return LoadResult{}, err
	}
	res := LoadResult{Editors: cfg.Editors, Elapsed: elapsed, CPU: cpu1 - cpu0}
	for i, a := range run.authors {
		res.Keystrokes += uint64(a.sent.Load())
		e := editors[i]
		res.Deliveries += e.deliveries.Load()
		res.Echoes += e.echoes.Load()
		res.Frames += e.frames.Load()
	}
	if want := res.Keystrokes * uint64(cfg.Editors-1); res.Deliveries != want {
		return res, fmt.Errorf("bench: %d deliveries, want %d (every keystroke to every other editor)", res.Deliveries, want)
	}
	return res, run.verifyDocument(ctx)
}

// verifyDocument joins the room once more and checks that the document the server sends a
// newcomer holds every keystroke of every editor, nothing more.
func (l *loadRun) verifyDocument(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	d := websocket.Dialer{HandshakeTimeout: 10 * time.Second}
	conn, _, err := d.DialContext(ctx, l.cfg.URL, http.Header{})
	if err != nil {
		return fmt.Errorf("bench: joining to check the document: %w", err)
	}
	defer conn.Close()
	conn.SetReadLimit(256 << 20)
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetReadDeadline(dl)
	}
	if err := conn.WriteMessage(websocket.BinaryMessage, frame(msgSync, syncStep1, []byte{0})); err != nil {
		return fmt.Errorf("bench: asking for the document: %w", err)
	}
	for {
		_, msg, err := conn.ReadMessage()
		if err != nil {
			return fmt.Errorf("bench: waiting for the document: %w", err)
		}
		r := reader{b: msg}
		typ, err1 := r.uint()
		sub, err2 := r.uint()
		doc, err3 := r.bytes()
		if err := errors.Join(err1, err2, err3); err != nil {
			return fmt.Errorf("bench: message while waiting for the document: %w", err)
		}
		if typ != msgSync || sub != syncStep2 {
			continue
		}
		spans, err := updateSpans(nil, doc)
		if err != nil {
			return fmt.Errorf("bench: the document: %w", err)
		}
		have := make([]uint64, len(l.authors)) // clocks [0, have[i]) present, contiguous
		for _, s := range spans {
			i := int(s.client) - firstClient
			if i < 0 || i >= len(have) || s.start != have[i] {
				return fmt.Errorf("bench: the document holds clocks %d..%d of client %d out of order or unknown", s.start, s.end, s.client)
			}
			have[i] = s.end
		}
		for i, a := range l.authors {
			if sent := uint64(a.sent.Load()); have[i] != sent {
				return fmt.Errorf("bench: the document holds %d keystrokes of editor %d, which sent %d", have[i], i, sent)
			}
		}
		return nil
	}
}

type loadRun struct {
	cfg     LoadConfig
	authors []*author

	errOnce sync.Once
	firstEr error
	failed  chan struct{}
}

func (l *loadRun) fail(err error) {
	if err == nil {
		return
	}
	l.errOnce.Do(func() {
		l.firstEr = err
		close(l.failed)
	})
}

func (l *loadRun) err() error {
	select {
	case <-l.failed:
		return l.firstEr
	default:
		return nil
	}
}

func (l *loadRun) cpu() (time.Duration, error) {
	if l.cfg.CPU == nil {
		return 0, nil
	}
	return l.cfg.CPU()
}

// drain waits until every keystroke sent has reached every other editor.
func (l *loadRun) drain(ctx context.Context, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		missing := 0
		for _, a := range l.authors {
			a.mu.Lock()
			if a.done < a.sent.Load() {
				missing++
			}
			a.mu.Unlock()
		}
		if missing == 0 {
			return nil
		}
		if err := l.err(); err != nil {
			return err
		}
		if time.Now().After(deadline) {
			var b strings.Builder
			for i, a := range l.authors {
				a.mu.Lock()
				if a.done < a.sent.Load() {
					fmt.Fprintf(&b, " editor %d: %d of %d keystrokes seen by all;", i, a.done, a.sent.Load())
				}
				a.mu.Unlock()
			}
			return fmt.Errorf("bench: after %v some keystrokes never reached every editor:%s", timeout, b.String())
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// author tracks one editor's keystrokes until every other editor has received them.
type author struct {
	sent  atomic.Int64
	space chan struct{} // a token when done advanced

	mu     sync.Mutex
	done   int64   // keystrokes [0, done) have reached every other editor
	counts []int32 // counts[k % window]: how many editors received keystroke k (done <= k < done+window)
}

// received records that one more editor got keystrokes [from, to) of this author.
func (a *author) received(from, to uint64, others int32) {
	a.mu.Lock()
	w := uint64(len(a.counts))
	for k := from; k < to; k++ {
		a.counts[k%w]++
	}
	advanced := false
	for a.counts[uint64(a.done)%w] == others {
		a.counts[uint64(a.done)%w] = 0
		a.done++
		advanced = true
	}
	a.mu.Unlock()
	if advanced {
		select {
		case a.space <- struct{}{}:
		default:
		}
	}
}

func (a *author) doneCount() int64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.done
}

// editor is one client connection.
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
