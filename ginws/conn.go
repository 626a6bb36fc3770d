package ginws

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/gorilla/websocket"
)

// ErrSlowClient is returned by sends to a connection that was just closed because its client could
// not keep up. errors.Is(ErrSlowClient, ErrClosed) is true.
var ErrSlowClient = fmt.Errorf("%w: slow client", ErrClosed)

type connState uint8

const (
	stateConnecting connState = iota // in Connect, not accepted
	stateOpen                        // accepted
	stateClosing                     // the server queued a close frame
	stateClosed                      // the socket is gone
)

// Conn is one WebSocket connection: the API a consumer uses through the embedded
// WebsocketConsumer. It carries the Scope, the channel name, the layer, and the methods to accept,
// send, join groups and close.
//
// # Concurrency
//
// SendText, SendBinary, SendJSON, Close, the group methods and the accessors are safe to call from
// any goroutine — from handlers, and from goroutines the consumer starts (which should stop when
// Context() is done). Sends never block: they queue the frame for the connection's writer and
// return; a client that lets more than Config.OutboundLimit bytes pile up is closed as slow.
// Accept may only be called from Connect.
type Conn struct {
	srv         *Server
	scope       *Scope
	consumer    Consumer
	events      Events // keys normalized ('.' → '_')
	channel     string
	unsubscribe func()
	pullLayer   bool // the layer has no Subscriber: a goroutine polls Receive
	inboxCap    int
	ctx         context.Context
	cancel      context.CancelFunc

	// Handshake only (the handshake goroutine, inside open).
	w             http.ResponseWriter
	req           *http.Request
	upgradeFailed bool

	ws *websocket.Conn // set by Accept, before any other goroutine starts
	nc net.Conn

	current *Envelope // the event being dispatched; pump goroutine only

	mu            sync.Mutex
	cond          sync.Cond // on mu: the reader and the layer poller wait for room in the inbox
	state         connState
	refused       bool // Close called before Accept
	shuttingDown  bool // refused because the server is shutting down
	groups        []string
	groupsLeft    bool
	inbox         []inboxItem
	inboxSpare    []inboxItem
	pendingEvents int
	pendingFrames int
	pumping       bool
	hold          bool // no pump until Connect has returned
	out           []outFrame
	outSpare      []outFrame
	outBytes      int
	writing       bool
	writeStart    time.Time
	closeCode     int // set when the server decided to close
	closeReason   string
	ended         bool // the reader finished; the end item is queued
	endCode       int
	tcpClosed     bool
	pingTimer     *time.Timer
	closeTimer    *time.Timer
}

type itemKind uint8

const (
	itemFrame itemKind = iota
	itemEvent
	itemEnd
)

type inboxItem struct {
	kind  itemKind
	frame Frame
	env   *Envelope
}

// maxPendingFrames bounds the client frames read but not yet handled; the reader stops reading
// (TCP pushes back on the client) until the consumer catches up.
const maxPendingFrames = 16

func newConn(s *Server, scope *Scope) *Conn {
	c := &Conn{srv: s, scope: scope, inboxCap: DefaultCapacity, hold: true}
	c.cond.L = &c.mu
	base, cancel := context.WithCancel(context.WithoutCancel(scope.req.Context()))
	c.ctx = context.WithValue(base, connCtxKey{}, c)
	c.cancel = cancel
	return c
}

// Scope returns the handshake's Scope.
func (c *Conn) Scope() *Scope { return c.scope }

// ChannelName returns the connection's channel name: a Layer.Send to it from anywhere (another
// consumer, an HTTP handler, a background job) reaches this consumer's event handlers.
func (c *Conn) ChannelName() string { return c.channel }

// Layer returns the channel layer.
func (c *Conn) Layer() Layer { return c.srv.cfg.Layer }

// Context returns the connection's context, canceled when the connection ends. Handlers receive
// it (or a context derived from it) as their ctx.
func (c *Conn) Context() context.Context { return c.ctx }

// Logger returns the server's logger with the connection's channel and path attached.
func (c *Conn) Logger() *slog.Logger {
	return c.srv.cfg.Logger.With("channel", c.channel, "path", c.scope.Path())
}

// Subprotocol returns the subprotocol chosen by Accept, or "".
func (c *Conn) Subprotocol() string {
	if c.ws == nil {
		return ""
	}
	return c.ws.Subprotocol()
}

// AcceptOption adjusts Accept.
type AcceptOption func(*acceptOptions)

type acceptOptions struct {
	subprotocol string
	header      http.Header
}

// WithSubprotocol selects one of the subprotocols the client offered (Scope.Subprotocols).
func WithSubprotocol(p string) AcceptOption {
	return func(o *acceptOptions) { o.subprotocol = p }
}

// WithHeader adds a header to the 101 response (Channels' accept(headers=...)).
func WithHeader(key, value string) AcceptOption {
	return func(o *acceptOptions) {
		if o.header == nil {
			o.header = http.Header{}
		}
		o.header.Add(key, value)
	}
}

// Accept completes the handshake: the client gets 101 Switching Protocols and the connection opens.
// Call it from Connect; frames sent after it (even within Connect) reach the client.
func (c *Conn) Accept(opts ...AcceptOption) error {
	c.mu.Lock()
	state, refused := c.state, c.refused
	c.mu.Unlock()
	switch {
	case state != stateConnecting:
		return ErrAlreadyAccepted
	case refused:
		return ErrClosed
	case c.w == nil:
		return errors.New("ginws: Accept must be called from Connect")
	}
	var o acceptOptions
	for _, opt := range opts {
		opt(&o)
	}
	if o.subprotocol == "" {
		if p, ok := c.scope.keys[preferredSubprotocolKey].(string); ok && slices.Contains(c.scope.Subprotocols(), p) {
			o.subprotocol = p
		}
	}
	header := o.header
	if o.subprotocol != "" {
		if !slices.Contains(c.scope.Subprotocols(), o.subprotocol) {
			return fmt.Errorf("ginws: subprotocol %q was not offered by the client", o.subprotocol)
		}
		if header == nil {
			header = http.Header{}
		}
		header.Set("Sec-WebSocket-Protocol", o.subprotocol)
	}
	ws, err := c.srv.upgrader.Upgrade(c.w, c.req, header)
	if err != nil {
		c.upgradeFailed = true // gorilla answered the request (or dropped it)
		return fmt.Errorf("ginws: upgrade: %w", err)
	}
	c.ws, c.nc = ws, ws.NetConn()
	ws.SetReadLimit(c.srv.cfg.ReadLimit)
	ws.SetCloseHandler(func(int, string) error { return nil }) // the runtime answers closes itself
	ws.SetPingHandler(c.onPing)
	ws.SetPongHandler(c.onPong)
	c.mu.Lock()
	c.state = stateOpen
	c.mu.Unlock()
	return nil
}

// SendText sends a text frame. s must be valid UTF-8.
func (c *Conn) SendText(s string) error {
	if !utf8.ValidString(s) {
		return errors.New("ginws: SendText needs valid UTF-8; use SendBinary for bytes")
	}
	return c.enqueue(outFrame{op: opText, data: []byte(s)})
}

// SendBinary sends a binary frame with a copy of b.
func (c *Conn) SendBinary(b []byte) error {
	return c.enqueue(outFrame{op: opBinary, data: append([]byte(nil), b...)})
}

// SendJSON sends v encoded as JSON in a text frame.
func (c *Conn) SendJSON(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("ginws: SendJSON: %w", err)
	}
	return c.enqueue(outFrame{op: opText, data: b})
}

// Close closes the connection with code (0 means 1000) and reason, after the frames already sent.
// Before Accept it refuses the handshake with HTTP 403, as Channels does. Disconnect still runs for
// an accepted connection. Closing twice is harmless.
func (c *Conn) Close(code int, reason string) error {
	if code == 0 {
		code = CloseNormal
	}
	if !sendableCloseCode(code) {
		return fmt.Errorf("ginws: close code %d may not be sent (use 1000-1014 except 1004-1006, or 3000-4999)", code)
	}
	c.closeWith(code, reason)
	return nil
}

// GroupAdd adds the connection to group. Groups joined this way are left when the connection ends,
// like declared ones.
func (c *Conn) GroupAdd(ctx context.Context, group string) error {
	if err := c.srv.cfg.Layer.GroupAdd(ctx, group, c.channel); err != nil {
		return err
	}
	c.mu.Lock()
	left := c.groupsLeft
	if !left && !slices.Contains(c.groups, group) {
		c.groups = append(c.groups, group)
	}
	c.mu.Unlock()
	if left {
		_ = c.srv.cfg.Layer.GroupDiscard(ctx, group, c.channel)
		return ErrClosed
	}
	return nil
}

// GroupDiscard removes the connection from group.
func (c *Conn) GroupDiscard(ctx context.Context, group string) error {
	c.mu.Lock()
	if i := slices.Index(c.groups, group); i >= 0 {
		c.groups = slices.Delete(c.groups, i, i+1)
	}
	c.mu.Unlock()
	return c.srv.cfg.Layer.GroupDiscard(ctx, group, c.channel)
}

// GroupSend sends msg to every member of group through the layer (this connection too, if it is
// a member).
func (c *Conn) GroupSend(ctx context.Context, group string, msg Message) error {
	return c.srv.cfg.Layer.GroupSend(ctx, group, msg)
}

func (c *Conn) leaveGroups(ctx context.Context) {
	c.mu.Lock()
	groups := c.groups
	c.groups, c.groupsLeft = nil, true
	c.mu.Unlock()
	for _, g := range groups {
		if err := c.srv.cfg.Layer.GroupDiscard(ctx, g, c.channel); err != nil {
			c.Logger().Warn("ginws: leaving group failed", "group", g, "error", err)
		}
	}
}

func (c *Conn) setEvents(events Events) error {
	if len(events) == 0 {
		return nil
	}
	c.events = make(Events, len(events))
	for typ, h := range events {
		name, err := handlerName(typ)
		if err != nil {
			return fmt.Errorf("ginws: Events(): %w", err)
		}
		if h == nil {
			return fmt.Errorf("ginws: Events(): nil handler for %q", typ)
		}
		if _, dup := c.events[name]; dup {
			return fmt.Errorf("ginws: Events(): %q is registered twice ('.' and '_' are the same in event types)", typ)
		}
		c.events[name] = h
	}
	return nil
}

// handler finds the handler for an event type, with Channels' rules.
func (c *Conn) handler(typ string) (EventHandler, error) {
	if typ == "" {
		return nil, errors.New(`ginws: event has no "type" (or it is not a string)`)
	}
	if typ[0] == '_' || typ[0] == '.' {
		return nil, fmt.Errorf("ginws: malformed event type %s: it must not start with '_' or '.'", quote(typ))
	}
	var buf [96]byte
	b := append(buf[:0], typ...)
	for i, ch := range b {
		if ch == '.' {
			b[i] = '_'
		}
	}
	if h := c.events[string(b)]; h != nil {
		return h, nil
	}
	return nil, fmt.Errorf("ginws: no handler for event type %s (add it to the consumer's Events())", quote(typ))
}
