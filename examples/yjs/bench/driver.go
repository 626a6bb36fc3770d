package main

import (
	"context"
	"errors"
	"fmt"
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
	Document   int           // bytes of the document a newcomer received after the run
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
	res.Document, err = run.verifyDocument(ctx)
	return res, err
}

// verifyDocument joins the room once more and checks that the document the server sends a
// newcomer holds every keystroke of every editor, nothing more.
func (l *loadRun) verifyDocument(ctx context.Context) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	d := websocket.Dialer{HandshakeTimeout: 10 * time.Second}
	conn, _, err := d.DialContext(ctx, l.cfg.URL, http.Header{})
	if err != nil {
		return 0, fmt.Errorf("bench: joining to check the document: %w", err)
	}
	defer conn.Close()
	conn.SetReadLimit(256 << 20)
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetReadDeadline(dl)
	}
	if err := conn.WriteMessage(websocket.BinaryMessage, frame(msgSync, syncStep1, []byte{0})); err != nil {
		return 0, fmt.Errorf("bench: asking for the document: %w", err)
	}
	for {
		_, msg, err := conn.ReadMessage()
		if err != nil {
			return 0, fmt.Errorf("bench: waiting for the document: %w", err)
		}
		r := reader{b: msg}
		typ, err1 := r.uint()
		sub, err2 := r.uint()
		doc, err3 := r.bytes()
		if err := errors.Join(err1, err2, err3); err != nil {
			return 0, fmt.Errorf("bench: message while waiting for the document: %w", err)
		}
		if typ != msgSync || sub != syncStep2 {
			continue
		}
		spans, err := updateSpans(nil, doc)
		if err != nil {
			return 0, fmt.Errorf("bench: the document: %w", err)
		}
		have := make([]uint64, len(l.authors)) // clocks [0, have[i]) present, contiguous
		for _, s := range spans {
			i := int(s.client) - firstClient
			if i < 0 || i >= len(have) || s.start != have[i] {
				return 0, fmt.Errorf("bench: the document holds clocks %d..%d of client %d out of order or unknown", s.start, s.end, s.client)
			}
			have[i] = s.end
		}
		for i, a := range l.authors {
			if sent := uint64(a.sent.Load()); have[i] != sent {
				return 0, fmt.Errorf("bench: the document holds %d keystrokes of editor %d, which sent %d", have[i], i, sent)
			}
		}
		return len(doc), nil
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
