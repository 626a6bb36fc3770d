package ginws

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gin-gonic/gin"

	"ginws.dev/ginws/layer"
)

// Server-sent events: Channels' AsyncHttpConsumer used for server push, as a text/event-stream
// response. A StreamConsumer runs behind the same Gin middleware, gets the same Scope, joins
// groups and handles layer events with the same Events handlers as a WebSocket consumer (a
// RelayJSON handler writes its JSON as the event's data). The event's id is its position in the
// group's history, so a browser's EventSource, which sends Last-Event-ID when it reconnects,
// resumes where it stopped (Stream.GroupAddSince).
//
// A stream runs on its request's goroutine: it writes, handles events one at a time and sends a
// keep-alive comment every Config.PingInterval. It ends when the client goes away, when the server
// shuts down (the client reconnects with Last-Event-ID, to this process or another), and when the
// client falls behind: its queue of events holds the layer's capacity (and its unwritten data
// Config.OutboundLimit), and an event that finds it full ends the stream instead of being dropped
// in silence (counted in Stats.SlowClients); the client reconnects and resumes from its last id.

// StreamConsumer is the code behind one server-sent event stream. Mount it with MountSSE. Like a
// Consumer it may add Groups() (joined from the client's Last-Event-ID before Connect) and Events()
// (handlers for layer events).
type StreamConsumer interface {
	// Connect decides whether to stream: return nil to start, Refuse(status, reason) to answer
	// with that status, any other error for 500. Nothing has been written to the client yet;
	// events queued meanwhile are handled once Connect has returned.
	Connect(ctx context.Context, s *Stream) error
}

// Stream is one server-sent event stream: its Scope, channel and groups, and the methods that send
// events. Its methods are safe for concurrent use; sends queue data for the stream's goroutine.
type Stream struct {
	srv         *Server
	scope       *Scope
	channel     string
	ctx         context.Context
	cancel      context.CancelFunc
	lastEventID string // the client's Last-Event-ID, immutable
	capacity    int    // events queued at most; immutable

	current atomic.Pointer[layer.Envelope] // the event being handled, set by the stream goroutine

	mu        sync.Mutex
	events    []*layer.Envelope // queued for the stream goroutine; guarded by mu
	out       []byte            // written by the next flush; guarded by mu
	wake      chan struct{}     // signalled when events or out get something; capacity 1
	slow      bool              // ended because the client fell behind; guarded by mu
	groups    []string          // joined; left when the stream ends; guarded by mu
	replaying int               // GroupAddSince calls under way: the queue takes the replay; guarded by mu
	replayed  int               // replayed events still queued: live ones get capacity more room; guarded by mu
}

type streamCtxKey struct{}

func streamFromContext(ctx context.Context) *Stream {
	s, _ := ctx.Value(streamCtxKey{}).(*Stream)
	return s
}

// MountSSE returns a Gin handler that streams layer events to each request as server-sent events,
// through a StreamConsumer made by factory:
//
//	r.GET("/events/chat/:room/", middleware.RequireUser(), ws.MountSSE(func() ginws.StreamConsumer { return new(ChatStream) }))
func (s *Server) MountSSE(factory func() StreamConsumer) gin.HandlerFunc {
	return func(gc *gin.Context) { s.serveStream(gc, factory) }
}

// Scope returns the request's Scope.
func (st *Stream) Scope() *Scope { return st.scope }

// ChannelName returns the stream's channel name: a Layer.Send to it reaches its event handlers.
func (st *Stream) ChannelName() string { return st.channel }

// Context returns the stream's context, canceled when it ends.
func (st *Stream) Context() context.Context { return st.ctx }

// Logger returns the server's logger with the stream's channel and path.
func (st *Stream) Logger() *slog.Logger {
	return st.srv.cfg.Logger.With("channel", st.channel, "path", st.scope.Path())
}

// LastEventID returns the position the client resumes from: its Last-Event-ID header (sent by
// EventSource when it reconnects), else a "lastEventId" query parameter (for a first connection
// that knows where to start); the zero Position when there is none. A malformed one is reported as
// an error wrapping layer.ErrBadPosition.
func (st *Stream) LastEventID() (layer.Position, error) { return layer.ParsePosition(st.lastEventID) }

// GroupAdd joins group; it is left when the stream ends.
func (st *Stream) GroupAdd(ctx context.Context, group string) error {
	if err := st.srv.cfg.Layer.GroupAdd(ctx, group, st.channel); err != nil {
		return err
	}
	st.joined(group)
	return nil
}

// GroupAddSince joins group and first delivers its messages after since, as Conn.GroupAddSince.
func (st *Stream) GroupAddSince(ctx context.Context, group string, since layer.Position) (layer.Recovery, error) {
	r, ok := st.srv.cfg.Layer.(layer.Resumer)
	if !ok {
		return layer.Recovery{Gap: !since.IsZero()}, st.GroupAdd(ctx, group)
	}
	st.mu.Lock()
	st.replaying++
	st.mu.Unlock()
	rec, err := r.GroupAddSince(ctx, group, st.channel, since)
	st.mu.Lock()
	st.replaying--
	st.mu.Unlock()
	if err == nil {
		st.joined(group)
	}
	return rec, err
}

func (st *Stream) joined(group string) {
	st.mu.Lock()
	defer st.mu.Unlock()
	for _, g := range st.groups {
		if g == group {
			return
		}
	}
	st.groups = append(st.groups, group)
}

// GroupSend sends msg to every member of group through the layer.
func (st *Stream) GroupSend(ctx context.Context, group string, msg layer.Message) error {
	return st.srv.cfg.Layer.GroupSend(ctx, group, msg)
}

// SendJSON sends v, encoded as JSON, as an event's data. Sent from an event handler, the event
// gets the layer event's position as its id.
func (st *Stream) SendJSON(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("ginws: SendJSON: %w", err)
	}
	var pos layer.Position
	if env := st.current.Load(); env != nil {
		pos = env.Position
	}
	return st.send(sseEvent(nil, pos, b))
}

// sseEvent appends one event: its id when pos is not zero, then data (JSON has no newline).
func sseEvent(dst []byte, pos layer.Position, data []byte) []byte {
	if !pos.IsZero() {
		dst = append(append(append(dst, "id: "...), pos.String()...), '\n')
	}
	return append(append(append(dst, "data: "...), data...), "\n\n"...)
}

// send queues an encoded event for the client.
func (st *Stream) send(b []byte) error {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.ctx.Err() != nil {
		return ErrClosed
	}
	if len(st.out)+len(b) > st.srv.cfg.OutboundLimit {
		st.slowLocked()
		return ErrSlowClient
	}
	st.out = append(st.out, b...)
	st.signal()
	return nil
}

func (st *Stream) signal() {
	select {
	case st.wake <- struct{}{}:
	default:
	}
}

// deliver is the layer's callback: it queues an event. It never blocks.
func (st *Stream) deliver(env *layer.Envelope) error {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.ctx.Err() != nil {
		return nil
	}
	if st.replaying > 0 {
		st.replayed++
	} else if len(st.events) >= st.capacity+st.replayed {
		// Rather than miss an event in silence, end the stream: the client reconnects with its
		// Last-Event-ID and the history gives it what it missed.
		st.slowLocked()
		st.srv.droppedEvents.Add(1)
		return layer.ErrChannelFull
	}
	st.events = append(st.events, env)
	st.signal()
	return nil
}

// slowLocked ends the stream of a client that fell behind. Callers hold st.mu.
func (st *Stream) slowLocked() {
	if !st.slow {
		st.slow = true
		st.srv.slowClients.Add(1)
	}
	st.cancel()
}

// serveStream runs one stream on the request's goroutine.
func (s *Server) serveStream(gc *gin.Context, factory func() StreamConsumer) {
	r := gc.Request
	consumer := factory()
	if consumer == nil {
		gc.AbortWithStatus(http.StatusInternalServerError)
		return
	}
	ctx, cancel := context.WithCancel(r.Context())
	st := &Stream{srv: s, scope: NewScope(gc), cancel: cancel, capacity: layer.DefaultCapacity, wake: make(chan struct{}, 1)}
	st.ctx = context.WithValue(ctx, streamCtxKey{}, st)
	defer cancel()
	st.lastEventID = r.Header.Get("Last-Event-ID")
	if st.lastEventID == "" {
		st.lastEventID = r.URL.Query().Get("lastEventId")
	}
	if !s.trackStream(st) {
		s.refused.Add(1)
		gc.AbortWithStatus(http.StatusServiceUnavailable)
		return
	}
	defer s.forgetStream(st)

	status, err := st.open(consumer)
	defer st.release()
	if status != 0 {
		s.refused.Add(1)
		if status >= 500 {
			s.cfg.Logger.Error("ginws: event stream refused", "path", r.URL.Path, "status", status, "error", err)
		} else {
			s.cfg.Logger.Debug("ginws: event stream refused", "path", r.URL.Path, "status", status, "reason", err)
		}
		gc.AbortWithStatus(status)
		return
	}
	s.accepted.Add(1)
	s.open.Add(1)
	defer s.open.Add(-1)
	defer s.disconnected.Add(1)
	st.run(gc.Writer, r, consumer)
}

// open joins the declared groups (from the client's Last-Event-ID) and runs Connect. It returns 0
// to stream, or the HTTP status to refuse with.
func (st *Stream) open(consumer StreamConsumer) (int, error) {
	l := st.srv.cfg.Layer
	name, err := l.NewChannel(st.ctx, "specific")
	if err != nil {
		return http.StatusInternalServerError, fmt.Errorf("ginws: new channel: %w", err)
	}
	st.channel = name
	if cr, ok := l.(layer.CapacityReporter); ok {
		st.capacity = max(1, cr.Capacity(name))
	}
	unsubscribe, err := layer.Listen(l, name, layer.Listener{Deliver: st.deliver})
	if err != nil {
		return http.StatusInternalServerError, fmt.Errorf("ginws: listen on %s: %w", name, err)
	}
	context.AfterFunc(st.ctx, unsubscribe)
	if gm, ok := consumer.(GroupMember); ok {
		since, _ := st.LastEventID()
		for _, g := range gm.Groups() {
			if _, err := st.GroupAddSince(st.ctx, g, since); err != nil {
				return http.StatusInternalServerError, fmt.Errorf("ginws: join declared group: %w", err)
			}
		}
	}
	err = st.callConnect(consumer)
	var re *RefuseError
	switch {
	case errors.As(err, &re):
		return re.Status, err
	case err != nil:
		return http.StatusInternalServerError, err
	}
	return 0, nil
}

func (st *Stream) callConnect(consumer StreamConsumer) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("ginws: Connect panicked: %v\n%s", p, debug.Stack())
		}
	}()
	return consumer.Connect(st.ctx, st)
}

// release ends the stream's deliveries and leaves its groups.
func (st *Stream) release() {
	st.cancel()
	st.mu.Lock()
	groups := st.groups
	st.groups = nil
	st.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), st.srv.cfg.DisconnectTimeout)
	defer cancel()
	for _, g := range groups {
		if err := st.srv.cfg.Layer.GroupDiscard(ctx, g, st.channel); err != nil {
			st.Logger().Warn("ginws: leaving group failed", "group", g, "error", err)
		}
	}
}

// run writes the response: headers, then events as they come, keep-alive comments between them,
// until the stream ends.
func (st *Stream) run(w gin.ResponseWriter, r *http.Request, consumer StreamConsumer) {
	rc := http.NewResponseController(w)
	_ = rc.SetReadDeadline(time.Time{}) // http.Server's ReadTimeout must not end the stream
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no") // nginx: do not buffer the stream
	w.WriteHeader(http.StatusOK)
	st.mu.Lock()
	// Tell EventSource how soon to reconnect after the stream ends (its default is a few seconds).
	st.out = append([]byte("retry: 1000\n\n"), st.out...)
	st.mu.Unlock()
	var handlers []namedHandler
	if er, ok := consumer.(EventRouter); ok {
		c := &Conn{}
		if err := c.setEvents(er.Events()); err != nil {
			st.Logger().Error("ginws: event stream: bad Events()", "error", err)
			return
		}
		handlers = c.events
	}
	bw := bufio.NewWriterSize(w, 4096)
	var keepalive <-chan time.Time
	if st.srv.cfg.PingInterval > 0 {
		t := time.NewTicker(st.srv.cfg.PingInterval)
		defer t.Stop()
		keepalive = t.C
	}
	for {
		st.mu.Lock()
		events := st.events
		st.events, st.replayed = nil, 0
		st.mu.Unlock()
		for _, env := range events {
			st.handle(handlers, env)
		}
		st.mu.Lock()
		out := st.out
		st.out = nil
		st.mu.Unlock()
		if len(out) > 0 {
			if err := st.write(rc, bw, out); err != nil {
				return
			}
			continue
		}
		select {
		case <-st.ctx.Done():
			return
		case <-st.wake:
		case <-keepalive:
			if err := st.write(rc, bw, []byte(": keep-alive\n\n")); err != nil {
				return
			}
		}
	}
}

// write writes b and flushes it within WriteTimeout.
func (st *Stream) write(rc *http.ResponseController, bw *bufio.Writer, b []byte) error {
	_ = rc.SetWriteDeadline(time.Now().Add(st.srv.cfg.WriteTimeout))
	_, err := bw.Write(b)
	if err == nil {
		err = bw.Flush()
	}
	if err == nil {
		err = rc.Flush()
	}
	st.srv.writes.Add(1)
	if err != nil {
		st.cancel()
	}
	return err
}

// handle runs the handler of one event. An error or a panic ends the stream, as it closes a socket.
func (st *Stream) handle(handlers []namedHandler, env *layer.Envelope) {
	if st.ctx.Err() != nil {
		return
	}
	typ := env.Type()
	var h EventHandler
	err := checkEventType(typ)
	for _, e := range handlers {
		if err == nil && sameType(e.name, typ) {
			h = e.h
			break
		}
	}
	if h == nil && err == nil {
		err = fmt.Errorf("ginws: no handler for event type %s (add it to the consumer's Events())", quote(typ))
	}
	if err == nil {
		st.current.Store(env)
		err = st.call(h, env)
		st.current.Store(nil)
	}
	if err != nil && !errors.Is(err, ErrClosed) {
		st.srv.handlerErrors.Add(1)
		st.Logger().Error("ginws: event stream handler failed; ending the stream", "type", typ, "error", err)
		st.cancel()
	}
}

func (st *Stream) call(h EventHandler, env *layer.Envelope) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("panic: %v\n%s", p, strings.TrimSpace(string(debug.Stack())))
		}
	}()
	return h(st.ctx, env.Message)
}

// trackStream registers a stream for shutdown; false during shutdown.
func (s *Server) trackStream(st *Stream) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.shutting {
		return false
	}
	if s.streams == nil {
		s.streams = make(map[*Stream]struct{})
	}
	s.streams[st] = struct{}{}
	return true
}

// forgetStream removes a finished stream.
func (s *Server) forgetStream(st *Stream) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.streams, st)
	s.drainedLocked()
}
