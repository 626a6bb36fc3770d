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
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"ginws.dev/ginws/layer"

	"golang.org/x/time/rate"

	"github.com/gin-gonic/gin"
)

// ErrSlowClient is returned by sends to a connection that was just closed because its client could
// not keep up. errors.Is(ErrSlowClient, ErrClosed) is true.
var ErrSlowClient = fmt.Errorf("%w: slow client", ErrClosed)

// Conn is one WebSocket connection: the API a consumer uses through the embedded
// WebsocketConsumer. It carries the Scope, the channel name, the layer, and the methods to accept,
// send, join groups and close.
//
// # Concurrency
//
// SendText, SendBinary, SendJSON, SendPrepared, Close, the group methods and the accessors are
// safe to call from any goroutine — from handlers, and from goroutines the consumer starts (which
// should stop when Context() is done). Sends never block: they queue the frame for the
// connection's writer and return; a client that lets more than Config.OutboundLimit bytes (or
// WithOutboundLimit's) pile up is closed as slow. Accept may only be called from Connect.
type Conn struct {
	// Set while the handshake runs (on Mount's goroutine), read-only once Accept has returned.
	srv           *Server
	scope         *Scope
	consumer      Consumer
	events        []namedHandler // names normalized ('.' → '_'); a few, so a slice beats a map
	channel       string
	unsubscribe   func() // stops the layer's deliveries (layer.Listen)
	ctx           context.Context
	cancel        context.CancelFunc
	hs            *handshake // while Connect runs; nil after
	nc            net.Conn   // set by Accept
	subprotocol   string
	readLimit     int64
	tooBig        *CloseError    // WithTooBigClose's code and reason; nil: 1009
	deflate       *deflateParams // permessage-deflate, when negotiated (WithCompression); else nil
	inboxCap      int32          // pending layer events at most (the layer's capacity)
	outboundLimit int            // written by Accept under mu before the state becomes open
	user          string         // Config.User's name for the connection's user; "" if anonymous
	msgLimit      *rate.Limiter  // Limits.Messages; nil without it. Reader goroutine only after start

	// The reader goroutine's own (conn_read.go).
	rs           readState
	readDeadline int64 // monoNow() of the read deadline set on nc
	dropLogged   bool  // the first message dropped over the rate limit was logged

	// The pump's own: one pump goroutine runs at a time, and each hands over to the next through
	// c.mu (conn_dispatch.go, conn_write.go).
	writeDeadline int64       // monoNow() of the write deadline set on nc
	closeWritten  bool        // a close frame reached the socket
	zw            ctxDeflater // the compressor, with the server's context takeover (deflate_ctx.go)
	// lastType and lastHandler remember the event type dispatched last and its handler: a room's
	// events are all of one or two types, so most dispatches skip the type's validation and the
	// handler search.
	lastType    string
	lastHandler EventHandler
	// current is the event being dispatched, set by the pump around each event handler, so that a
	// RelayJSON handler finds the Envelope's shared frame. It is atomic because the handler may
	// also be called from a goroutine the consumer started; such a call uses the shared frame only
	// if it carries the very message being dispatched (see RelayJSON).
	current atomic.Pointer[layer.Envelope]

	// state is the connection's place in its life (conn_state.go): written under mu by toLocked
	// only, readable without it.
	state atomic.Uint32

	// Everything below is guarded by mu. No I/O, logging or callback runs while it is held.
	mu   sync.Mutex
	cond *sync.Cond // on mu, made on first wait
	pump pumpState
	// dispatching is true while the pump runs the handlers of items it took from the inbox: a
	// relay event must then wait its turn in the inbox (deliverRelayLocked).
	dispatching bool

	// The queues: items for the pump (client messages, layer events, the end), frames for the
	// client. Spares keep one emptied slice of each to swap in.
	inbox         []inboxItem
	inboxSpare    []inboxItem
	pendingEvents int32 // layer events in inbox
	pendingFrames int32 // client messages in inbox
	out           []outFrame
	outSpare      []outFrame
	outBytes      int   // bytes in out, counted against outboundLimit
	pongQueued    bool  // a pong waits in out, not yet taken by the writer (see pong)
	outGuessed    int32 // relay frames in out not yet encoded, counted against inboxCap (relay.go)
	writeStart    int64 // monoNow() when the write under way (pumpWriting) began

	// The close: who decided it, why, and what is left to do (the rest is in rare).
	closeCode int32       // the code of the server's close (or of the cut socket); 0: none yet
	protoErr  *CloseError // the client's protocol error, closed once its earlier messages are handled
	slowWhy   string      // why the client was judged slow ("" if it was not)
	endCode   int32       // the code Disconnect gets
	cut       bool        // the socket was closed: nothing more is written

	groups []string // joined through the connection; left when it ends
	// replaying counts GroupAddSince calls under way: while it is not zero, deliver takes the
	// replayed history beyond inboxCap (the history's size bounds it). replayed counts the events
	// it so took that are still in inbox: live events arriving before the pump takes them get
	// inboxCap more room, so a replay larger than the queue does not crowd them out.
	replaying int32
	replayed  int32

	// rare holds what most connections never use: guarded by mu, made by rareLocked on first use,
	// nil until then.
	rare *connRare
}

// connRare is the part of a Conn that most connections never use — handshake limits, presence,
// a credential expiry, a refused handshake, a close handshake in progress — kept apart so that an
// idle connection does not carry it (issue 18: a Conn is allocated per socket, and these fields
// took it from the 640- to the 896-byte size class). Every field is guarded by Conn.mu, like the
// pointer to it.
type connRare struct {
	limitIP     string // the address counted by the handshake limits, if limitedIP
	limitedIP   bool   // counted in Server.limits.ip (released by Server.forget)
	limitedUser bool   // counted in Server.limits.user under Conn.user (released likewise)
	echoClose   bool   // the client closed first: finish answers its close frame

	// refuseReason is the reason given with the close that refused the handshake, kept for the
	// close frame if Accept's 101 had already gone out.
	refuseReason string
	closeTimer   *time.Timer // cuts a close handshake (or a protocol-error close) that takes too long

	tracked []string // presence groups the connection is tracked in (presence.go); untracked when it ends

	expiry      time.Time   // when the credentials expire (SetExpiry); zero: never
	expiryTimer *time.Timer // closes the connection at expiry; nil without one
}

// noRare is what rareNow returns for a connection without a connRare: all zero, never written.
var noRare connRare

// rareLocked returns c.rare, making it first. Callers hold c.mu, and may write its fields.
func (c *Conn) rareLocked() *connRare {
	if c.rare == nil {
		c.rare = new(connRare)
	}
	return c.rare
}

// rareNow returns c.rare for reading, or an all-zero connRare that must not be written if the
// connection has none. Callers hold c.mu.
func (c *Conn) rareNow() *connRare {
	if c.rare == nil {
		return &noRare
	}
	return c.rare
}

// handshake is what Accept needs from Mount while Connect runs.
type handshake struct {
	w             gin.ResponseWriter
	req           *http.Request
	upgradeFailed bool
}

func newConn(s *Server, scope *Scope) *Conn {
	c := &Conn{srv: s, scope: scope, inboxCap: layer.DefaultCapacity}
	base, cancel := context.WithCancel(context.Background())
	c.ctx = &connContext{Context: base, c: c}
	c.cancel = cancel
	return c
}

// connContext is a connection's context: the cancelable base, with the connection under
// connCtxKey (connFromContext). It is what context.WithValue(base, connCtxKey{}, c) gives, in 24
// bytes instead of 48, one per socket. Its fields are set by newConn and never change.
type connContext struct {
	context.Context
	c *Conn
}

func (x *connContext) Value(key any) any {
	if _, ok := key.(connCtxKey); ok {
		return x.c
	}
	return x.Context.Value(key)
}

func (x *connContext) String() string { return "ginws.Conn.Context" }

// Scope returns the handshake's Scope.
func (c *Conn) Scope() *Scope { return c.scope }

// ChannelName returns the connection's channel name: a Layer.Send to it from anywhere (another
// consumer, an HTTP handler, a background job) reaches this consumer's event handlers.
func (c *Conn) ChannelName() string { return c.channel }

// Layer returns the channel layer.
func (c *Conn) Layer() layer.Layer { return c.srv.cfg.Layer }

// Context returns the connection's context, canceled when the connection ends. Handlers receive
// it (or a context derived from it) as their ctx.
func (c *Conn) Context() context.Context { return c.ctx }

// Logger returns the server's logger with the connection's channel, route, path and (if
// Config.User names one) user attached, so that one connection's log lines can be followed.
func (c *Conn) Logger() *slog.Logger {
	if c.user == "" {
		return c.srv.cfg.Logger.With("channel", c.channel, "route", c.scope.Route(), "path", c.scope.Path())
	}
	return c.srv.cfg.Logger.With("channel", c.channel, "route", c.scope.Route(), "path", c.scope.Path(), "user", c.user)
}

// Subprotocol returns the subprotocol chosen by Accept, or "".
func (c *Conn) Subprotocol() string { return c.subprotocol }

// AcceptOption adjusts Accept.
type AcceptOption func(*acceptOptions)

type acceptOptions struct {
	subprotocol   string
	header        http.Header
	readLimit     int64
	outboundLimit int
	tooBig        *CloseError
	compression   *Compression
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

// WithReadLimit overrides Config.ReadLimit for this connection: the largest message, in bytes,
// its client may send. An endpoint that takes big messages (a document editor) can raise it
// without raising it for every route of the server. n <= 0 keeps the server's limit.
func WithReadLimit(n int64) AcceptOption {
	return func(o *acceptOptions) { o.readLimit = n }
}

// WithOutboundLimit overrides Config.OutboundLimit for this connection: how many bytes may wait to
// be written to its client before it is closed as slow. An endpoint that sends big messages (a
// whole document to a newcomer) can raise it for its own connections. n <= 0 keeps the server's
// limit.
func WithOutboundLimit(n int) AcceptOption {
	return func(o *acceptOptions) { o.outboundLimit = n }
}

// WithTooBigClose sets the close code and reason used when this connection's client sends a message
// over its read limit (default 1009, "message too big"). A protocol whose clients reconnect and
// resend after 1009 can pick a code they take as final (y-websocket does not reconnect after
// 4400-4499). code must be one a server may send.
func WithTooBigClose(code int, reason string) AcceptOption {
	return func(o *acceptOptions) { o.tooBig = &CloseError{Code: code, Reason: reason} }
}

// Accept completes the handshake: the client gets 101 Switching Protocols and the connection opens.
// Call it from Connect; frames sent after it (even within Connect) reach the client.
func (c *Conn) Accept(opts ...AcceptOption) error {
	switch c.stateNow() {
	case stateHandshake:
	case stateRefused, stateRefusedShutdown:
		return ErrClosed
	default:
		return ErrAlreadyAccepted
	}
	switch {
	case c.hs == nil:
		return errors.New("ginws: Accept must be called from Connect")
	}
	var o acceptOptions
	for _, opt := range opts {
		opt(&o)
	}
	if o.tooBig != nil && !validCloseCode(o.tooBig.Code) {
		return fmt.Errorf("ginws: WithTooBigClose: close code %d may not be sent", o.tooBig.Code)
	}
	if o.compression != nil {
		if err := o.compression.check(); err != nil {
			return err
		}
	}
	if o.subprotocol == "" {
		v, _ := c.scope.Value(preferredSubprotocolKey)
		if p, ok := v.(string); ok && slices.Contains(c.scope.Subprotocols(), p) {
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
	var deflate *deflateParams
	if o.compression != nil {
		var ext string
		if ext, deflate = negotiateDeflate(c.hs.req.Header, *o.compression); ext != "" {
			if header == nil {
				header = http.Header{}
			}
			// gorilla refuses a Sec-Websocket-Extensions response header (the canonical key): it
			// negotiates extensions itself, for its own frame layer, which ginws does not use. It
			// writes the headers' keys as they are, so the key is spelled as the RFC spells it,
			// which is not the canonical form and passes (TestCompressionNegotiation guards it).
			header["Sec-WebSocket-Extensions"] = []string{ext}
		}
	}
	// gorilla performs the handshake; from then on ginws reads and writes the frames itself (see
	// conn_read.go and flush), so gorilla's Conn is dropped.
	ws, err := c.srv.upgrader.Upgrade(c.hs.w, c.hs.req, header)
	if err != nil {
		c.hs.upgradeFailed = true // gorilla answered the request (or dropped it)
		return fmt.Errorf("ginws: upgrade: %w", err)
	}
	c.nc, c.subprotocol = ws.NetConn(), ws.Subprotocol()
	// net/http leaves its own deadlines (http.Server's ReadTimeout, WriteTimeout) on a hijacked
	// connection; from now on the connection's own keepalive and write deadlines rule.
	_ = c.nc.SetDeadline(time.Time{})
	c.readLimit, c.outboundLimit, c.tooBig = c.srv.cfg.ReadLimit, c.srv.cfg.OutboundLimit, o.tooBig
	c.deflate = deflate
	if deflate != nil && deflate.serverTakeover {
		c.zw.level = deflate.level
	}
	if o.readLimit > 0 {
		c.readLimit = o.readLimit
	}
	c.mu.Lock()
	if o.outboundLimit > 0 {
		c.outboundLimit = o.outboundLimit
	}
	// Shutdown, or a Close from another goroutine, may have refused the connection while the 101
	// was being written: it is open now, so it is closed like any open connection.
	late := c.stateNow() != stateHandshake
	c.toLocked(stateOpen)
	if late {
		c.closeLocked(int(c.closeCode), c.rareNow().refuseReason)
	}
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
	if !validCloseCode(code) {
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
	return c.joined(ctx, group)
}

// GroupAddSince joins group like GroupAdd, and first delivers the group's messages sent after
// since — the position of the last one the client saw, e.g. from a "since" query parameter or an
// SSE Last-Event-ID — to the event handlers, in order, before any live one, each once. It needs a
// layer with history for the group (layer.Resumer; see layer.MemoryConfig.History and
// redislayer.Config.History). When the history cannot cover since (too old, or lost), the
// Recovery's Gap is true and what the history holds is delivered: tell the client to reload.
// A zero since replays nothing; the Recovery's Last is then where the client can resume from if
// it sees no message before it goes away. With a layer without history it is GroupAdd, and Gap is
// true for any non-zero since.
//
// The replayed events are queued even beyond the layer's capacity; call it from Connect (the
// events are handled after Accept) or from a handler.
func (c *Conn) GroupAddSince(ctx context.Context, group string, since layer.Position) (layer.Recovery, error) {
	r, ok := c.srv.cfg.Layer.(layer.Resumer)
	if !ok {
		return layer.Recovery{Gap: !since.IsZero()}, c.GroupAdd(ctx, group)
	}
	c.mu.Lock()
	c.replaying++
	c.mu.Unlock()
	rec, err := r.GroupAddSince(ctx, group, c.channel, since)
	c.mu.Lock()
	c.replaying--
	c.mu.Unlock()
	if err != nil {
		return rec, err
	}
	return rec, c.joined(ctx, group)
}

// EventPosition returns the position of the event being handled, in its group's history (see
// GroupAddSince), or the zero Position: outside an event handler, for an event of a group without
// history, or one sent to the channel.
func (c *Conn) EventPosition() layer.Position {
	if env := c.current.Load(); env != nil {
		return env.Position
	}
	return layer.Position{}
}

// joined records group, just joined, for leaveGroups; it leaves it again at once if the
// connection ended meanwhile.
func (c *Conn) joined(ctx context.Context, group string) error {
	c.mu.Lock()
	left := c.stateNow() == stateClosed // leaveGroups has run
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
func (c *Conn) GroupSend(ctx context.Context, group string, msg layer.Message) error {
	return c.srv.cfg.Layer.GroupSend(ctx, group, msg)
}

// leaveGroups leaves every group. The connection is closed by then, so GroupAdd adds no more.
func (c *Conn) leaveGroups(ctx context.Context) {
	c.mu.Lock()
	groups := c.groups
	c.groups = nil
	c.mu.Unlock()
	for _, g := range groups {
		if err := c.srv.cfg.Layer.GroupDiscard(ctx, g, c.channel); err != nil {
			c.Logger().Warn("ginws: leaving group failed", "group", g, "error", err)
		}
	}
}

type namedHandler struct {
	name  string
	h     EventHandler
	relay *relay // h's relay if h is a RelayJSON handler, else nil
}

func (c *Conn) setEvents(events Events) error {
	if len(events) == 0 {
		return nil
	}
	c.events = make([]namedHandler, 0, len(events))
	for typ, h := range events {
		name, err := handlerName(typ)
		if err != nil {
			return fmt.Errorf("ginws: Events(): %w", err)
		}
		if h == nil {
			return fmt.Errorf("ginws: Events(): nil handler for %q", typ)
		}
		if strings.HasPrefix(name, "ginws_") {
			return fmt.Errorf("ginws: Events(): %q is reserved: ginws handles the \"ginws.\" event types itself", typ)
		}
		for _, e := range c.events {
			if e.name == name {
				return fmt.Errorf("ginws: Events(): %q is registered twice ('.' and '_' are the same in event types)", typ)
			}
		}
		c.events = append(c.events, namedHandler{name: name, h: h, relay: relayOf(h)})
	}
	return nil
}

// sameType compares a normalized handler name with an event type in which '.' stands for '_'.
func sameType(name, typ string) bool {
	if len(name) != len(typ) {
		return false
	}
	for i := 0; i < len(name); i++ {
		if t := typ[i]; name[i] != t && !(t == '.' && name[i] == '_') {
			return false
		}
	}
	return true
}

// handler finds the handler for an event type, with Channels' rules. Pump goroutine only (it
// remembers the last type found).
func (c *Conn) handler(typ string) (EventHandler, error) {
	if c.lastHandler != nil && typ == c.lastType {
		return c.lastHandler, nil
	}
	if err := checkEventType(typ); err != nil {
		return nil, err
	}
	for _, e := range c.events {
		if sameType(e.name, typ) {
			c.lastType, c.lastHandler = typ, e.h
			return e.h, nil
		}
	}
	return nil, fmt.Errorf("ginws: no handler for event type %s (add it to the consumer's Events())", quote(typ))
}
