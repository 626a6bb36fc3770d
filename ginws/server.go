package ginws

import (
	"context"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"ginws.dev/ginws/layer"

	"github.com/gorilla/websocket"
)

// Config configures a Server. The zero value is ready to use: an in-memory channel layer,
// same-origin handshakes only, and the limits below. A zero field means its default; a negative
// duration or size is refused by New (with a *ConfigError naming the field) unless the field says
// what it means.
type Config struct {
	// Layer is the channel layer shared by the server's connections (and by HTTP handlers, via
	// Server.Layer). Optional. Default: a new MemoryLayer with Channels' defaults.
	Layer layer.Layer

	// Logger receives the server's log lines. Optional. Default slog.Default().
	Logger *slog.Logger

	// CheckOrigin decides whether a handshake's Origin is allowed; a refused one gets HTTP 403.
	// Optional. Default: requests without an Origin header (non-browser clients) and requests
	// whose Origin host equals the Host header — unless origin middleware has already validated
	// the request (see MarkOriginChecked). The default trusts the Host header: list the names the
	// server answers to with middleware.AllowedHosts, or a rebound DNS name passes as same-origin.
	CheckOrigin func(r *http.Request) bool

	// Groups names groups every connection joins at the handshake, before the consumer's own
	// groups and Connect, and leaves when it ends: typically a group per user and one per session,
	// so that Server.CloseGroup can close them from a logout view, on every process. It runs on the
	// handshake's goroutine with the Scope the middleware filled; names must be valid group names
	// (a name that is not, or a layer error, refuses the handshake with 500). Optional. Default none.
	Groups func(s *Scope) []string

	// User names the user of a connection, from the Scope the middleware filled (for example
	// middleware.UserFrom), for Limits.ConnsPerUser and HandshakesPerUser and for the "user"
	// attribute of the connection's log lines; "" means anonymous. It runs once per handshake.
	// Optional. Default: no user is named.
	User func(s *Scope) string

	// Limits caps what one client, address or user may do. Optional. Default: no limits.
	Limits Limits

	// HandshakeTimeout bounds writing the handshake response. Optional. Default 10 s.
	HandshakeTimeout time.Duration

	// ReadLimit is the largest message, in bytes, a client may send; a larger one closes the
	// connection with 1009. Optional. Default 64 KiB.
	ReadLimit int64

	// WriteTimeout bounds a write to a client; a client whose write stays blocked this long
	// (between half of it and all of it: the deadline is refreshed lazily) is closed as slow.
	// Optional. Default 10 s.
	WriteTimeout time.Duration

	// OutboundLimit is how many bytes may wait to be written to one client; a client that lets
	// more pile up is closed with CloseSlowClient. A single message larger than this is dropped for
	// that client instead (see TooLargeError). Optional. Default 1 MiB.
	OutboundLimit int

	// PingInterval is how often the server pings each client. Optional. Default 20 s; negative
	// disables pings and dead-peer detection.
	PingInterval time.Duration

	// PingTimeout is how long a client may stay silent after a ping before it is considered dead
	// and its connection is dropped (Disconnect gets 1006). Optional. Default 30 s.
	PingTimeout time.Duration

	// CloseTimeout is how long to wait for the client's close frame after the server sent one.
	// Optional. Default 5 s.
	CloseTimeout time.Duration

	// DisconnectTimeout bounds the context given to Disconnect and to leaving groups. Optional.
	// Default 10 s.
	DisconnectTimeout time.Duration
}

// check refuses invalid fields.
func (c Config) check() error {
	for _, f := range []struct {
		name string
		d    time.Duration
	}{
		{"HandshakeTimeout", c.HandshakeTimeout}, {"WriteTimeout", c.WriteTimeout},
		{"PingTimeout", c.PingTimeout}, {"CloseTimeout", c.CloseTimeout},
		{"DisconnectTimeout", c.DisconnectTimeout},
	} {
		if f.d < 0 {
			return &ConfigError{Field: "ginws.Config." + f.name, Value: f.d, Rule: "must not be negative (zero means the default)"}
		}
	}
	if c.ReadLimit < 0 {
		return &ConfigError{Field: "ginws.Config.ReadLimit", Value: c.ReadLimit, Rule: "must not be negative (zero means the default, 64 KiB)"}
	}
	if err := c.Limits.check(); err != nil {
		return err
	}
	if c.OutboundLimit < 0 {
		return &ConfigError{Field: "ginws.Config.OutboundLimit", Value: c.OutboundLimit, Rule: "must not be negative (zero means the default, 1 MiB)"}
	}
	return nil
}

func (c Config) withDefaults() Config {
	if c.Layer == nil {
		c.Layer = layer.NewMemory(layer.MemoryConfig{})
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&c.HandshakeTimeout, 10*time.Second)
	def(&c.WriteTimeout, 10*time.Second)
	def(&c.PingInterval, 20*time.Second)
	def(&c.PingTimeout, 30*time.Second)
	def(&c.CloseTimeout, 5*time.Second)
	def(&c.DisconnectTimeout, 10*time.Second)
	if c.ReadLimit == 0 {
		c.ReadLimit = 64 << 10
	}
	if c.OutboundLimit == 0 {
		c.OutboundLimit = 1 << 20
	}
	return c
}

// Server runs the consumers of one or more routes: it owns their connections, their channel layer
// and their shutdown. Create one with New, mount it on routes with Mount, and call Shutdown (or
// register OnShutdown) when the HTTP server stops, because http.Server.Shutdown neither closes nor
// waits for hijacked connections such as WebSockets.
//
// A Server is safe for concurrent use.
type Server struct {
	cfg      Config
	upgrader websocket.Upgrader
	readWait time.Duration // read deadline after each frame or pong; 0 = none

	mu        sync.Mutex
	conns     map[*Conn]struct{}
	streams   map[*Stream]struct{} // server-sent event streams (sse.go)
	shutting  bool
	drained   chan struct{} // closed when no connection is left, for Wait
	pingTimer *time.Timer   // pings every connection each PingInterval, while there are any
	pingBuf   []*Conn

	open          atomic.Int64
	accepted      atomic.Uint64
	refused       atomic.Uint64
	disconnected  atomic.Uint64
	slowClients   atomic.Uint64
	droppedEvents atomic.Uint64
	tooLarge      atomic.Uint64
	handlerErrors atomic.Uint64
	relayed       atomic.Uint64 // relay events queued without a handler call (deliverRelayLocked)
	writes        atomic.Uint64
	framesWritten atomic.Uint64

	badTransitions atomic.Uint64 // state changes the connection state machine refused: runtime bugs

	pumps *pumpWorkers

	messagesIn, bytesIn, bytesOut atomic.Uint64
	closes                        codeCounts // by the code Disconnect got
	refusals                      codeCounts // refused handshakes by HTTP status

	limits            admission // handshake limits (Config.Limits)
	messagesLimited   atomic.Uint64
	handshakesLimited atomic.Uint64
}

// Stats is a snapshot of a Server's counters.
type Stats struct {
	Open          int64  // connections accepted and not yet disconnected
	Accepted      uint64 // handshakes accepted
	Refused       uint64 // handshakes refused (by origin, Connect, or shutdown)
	Disconnected  uint64 // accepted connections whose Disconnect has run
	SlowClients   uint64 // connections closed with CloseSlowClient
	DroppedEvents uint64 // layer events a full connection queue could not take
	TooLarge      uint64 // messages dropped for one connection because they alone exceeded its outbound limit
	HandlerErrors uint64 // handler errors and panics that closed a connection with 1011
	Writes        uint64 // write system calls to clients
	FramesWritten uint64 // frames they carried (FramesWritten/Writes is the write coalescing)

	MessagesIn uint64 // messages received from clients
	BytesIn    uint64 // their payload bytes
	BytesOut   uint64 // bytes written to clients (frames with their headers)
	// Closes counts ended connections by the code their Disconnect got (1006: the client
	// vanished); RefusedByStatus counts refused handshakes by HTTP status. Both are fresh maps.
	Closes          map[int]uint64
	RefusedByStatus map[int]uint64

	MessagesLimited   uint64 // client messages over Limits.Messages (each closed its connection, or was dropped)
	HandshakesLimited uint64 // handshakes refused with 429 by Limits (also counted in Refused)
}

// New returns a Server. It panics with a *ConfigError if cfg has an invalid field.
func New(cfg Config) *Server {
	if err := cfg.check(); err != nil {
		panic(err)
	}
	cfg = cfg.withDefaults()
	s := &Server{
		cfg:   cfg,
		conns: make(map[*Conn]struct{}),
		pumps: newPumpWorkers(),
	}
	s.limits.ip.maxOpen, s.limits.ip.rate = cfg.Limits.ConnsPerIP, cfg.Limits.HandshakesPerIP
	s.limits.user.maxOpen, s.limits.user.rate = cfg.Limits.ConnsPerUser, cfg.Limits.HandshakesPerUser
	s.upgrader = websocket.Upgrader{
		HandshakeTimeout: cfg.HandshakeTimeout,
		// ReadBufferSize 0: gorilla reuses net/http's buffer for the handshake; ginws reads frames
		// itself afterwards, into pooled buffers.
		// ginws writes frames itself; a pool (never used) keeps gorilla from holding a write
		// buffer per connection.
		WriteBufferPool: unusedPool{},
		CheckOrigin:     func(*http.Request) bool { return true }, // Mount checked it already
	}
	if cfg.PingInterval > 0 {
		s.readWait = cfg.PingInterval + cfg.PingTimeout
	}
	return s
}

type unusedPool struct{}

func (unusedPool) Get() any  { return nil }
func (unusedPool) Put(x any) {}

// Layer returns the server's channel layer, for sending to connections from HTTP handlers and
// background jobs (Channels' get_channel_layer()).
func (s *Server) Layer() layer.Layer { return s.cfg.Layer }

// Logger returns the server's logger.
func (s *Server) Logger() *slog.Logger { return s.cfg.Logger }

// Stats returns the server's counters.
func (s *Server) Stats() Stats {
	return Stats{
		Open:          s.open.Load(),
		Accepted:      s.accepted.Load(),
		Refused:       s.refused.Load(),
		Disconnected:  s.disconnected.Load(),
		SlowClients:   s.slowClients.Load(),
		DroppedEvents: s.droppedEvents.Load(),
		TooLarge:      s.tooLarge.Load(),
		HandlerErrors: s.handlerErrors.Load(),
		Writes:        s.writes.Load(),
		FramesWritten: s.framesWritten.Load(),

		MessagesIn: s.messagesIn.Load(), BytesIn: s.bytesIn.Load(), BytesOut: s.bytesOut.Load(),
		Closes: s.closes.snapshot(), RefusedByStatus: s.refusals.snapshot(),

		MessagesLimited:   s.messagesLimited.Load(),
		HandshakesLimited: s.handshakesLimited.Load(),
	}
}

// track registers a connection in handshake; it fails once shutdown has begun.
func (s *Server) track(c *Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.shutting {
		return false
	}
	s.conns[c] = struct{}{}
	return true
}

// pingLater makes sure the server's keepalive timer runs. One timer serves every connection (a
// timer per connection would cost each idle connection its memory); it stops when the last
// connection ends.
func (s *Server) pingLater() {
	if s.cfg.PingInterval <= 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.pingTimer == nil {
		s.pingTimer = time.AfterFunc(s.cfg.PingInterval, s.pingAll)
	}
}

func (s *Server) pingAll() {
	s.mu.Lock()
	// Take the buffer: a late round (the timer fires again while this one still pings, on a busy
	// machine or with a short interval) must not fill the array this round is reading.
	conns := s.pingBuf[:0]
	s.pingBuf = nil
	for c := range s.conns {
		conns = append(conns, c)
	}
	if len(conns) == 0 {
		s.pingTimer = nil
		s.pingBuf = nil
		s.mu.Unlock()
		return
	}
	s.pingTimer.Reset(s.cfg.PingInterval)
	s.mu.Unlock()
	for i, c := range conns {
		c.ping()
		conns[i] = nil
	}
	s.mu.Lock()
	if s.pingTimer != nil {
		s.pingBuf = conns[:0]
	}
	s.mu.Unlock()
}

// forget removes a finished connection.
func (s *Server) forget(c *Conn) {
	s.releaseLimits(c)
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.conns, c)
	if len(s.conns) == 0 && s.pingTimer != nil {
		s.pingTimer.Stop()
		s.pingTimer, s.pingBuf = nil, nil
	}
	s.drainedLocked()
}

// drainedLocked wakes Wait once no connection and no stream is left. Callers hold s.mu.
func (s *Server) drainedLocked() {
	if len(s.conns) == 0 && len(s.streams) == 0 && s.drained != nil {
		close(s.drained)
		s.drained = nil
	}
}

// OnShutdown begins a graceful shutdown without waiting: new handshakes get HTTP 503 and every
// open connection is closed with 1001 (going away). Its signature fits
// http.Server.RegisterOnShutdown; pair it with Wait, or call Shutdown instead.
func (s *Server) OnShutdown() {
	s.mu.Lock()
	s.shutting = true
	conns := make([]*Conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	for st := range s.streams {
		st.cancel() // the client reconnects with Last-Event-ID
	}
	s.mu.Unlock()
	for _, c := range conns {
		c.shutdown()
	}
}

// Wait waits until every connection has ended and its Disconnect has returned, or ctx is done.
// Call it after OnShutdown.
func (s *Server) Wait(ctx context.Context) error {
	s.mu.Lock()
	if len(s.conns) == 0 && len(s.streams) == 0 {
		s.mu.Unlock()
		return nil
	}
	if s.drained == nil {
		s.drained = make(chan struct{})
	}
	drained := s.drained
	s.mu.Unlock()
	select {
	case <-drained:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Shutdown closes every connection with 1001 and waits for their Disconnect handlers, as
// http.Server.Shutdown does for ordinary requests. If ctx ends first, the remaining connections are
// cut off (their Disconnect still runs) and ctx's error is returned.
func (s *Server) Shutdown(ctx context.Context) error {
	s.OnShutdown()
	err := s.Wait(ctx)
	if err != nil {
		s.mu.Lock()
		conns := make([]*Conn, 0, len(s.conns))
		for c := range s.conns {
			conns = append(conns, c)
		}
		s.mu.Unlock()
		for _, c := range conns {
			c.forceClose()
		}
	}
	return err
}
