package yjs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"strings"
	"time"

	"ginws.dev/ginws"
	"ginws.dev/ginws/yjs/ystore"
)

// Access is what a connection may do in a room.
type Access int

const (
	// NoAccess refuses the handshake with HTTP 403.
	NoAccess Access = iota
	// ReadOnly receives the document and awareness, and may publish its own awareness (so
	// viewers show up in presence lists), but its document changes are refused with the
	// y-protocols permission-denied message and never applied.
	ReadOnly
	// ReadWrite may change the document.
	ReadWrite
)

func (a Access) String() string {
	switch a {
	case NoAccess:
		return "no access"
	case ReadOnly:
		return "read-only"
	case ReadWrite:
		return "read-write"
	}
	return "unknown access"
}

// Config configures a Server. The zero value is ready to use: documents kept in a MemoryStore,
// the room named by the route's "room" parameter, read-write access for everyone.
//
// As everywhere in ginws, a zero field means its default, and New refuses a bad value by panicking
// with a *ginws.ConfigError naming the field ("yjs.Config.SaveDelay"), the value and the rule: a
// negative count or size, a negative duration where its comment gives negative no meaning.
type Config struct {
	// Store persists documents. Optional. Default ystore.NewMemory() (documents survive their
	// rooms emptying, not the process).
	Store ystore.Store

	// Namespace keeps this Server's rooms apart from those of other yjs.Servers on the same
	// channel layer (a public and a private route, two apps): rooms talk through the group
	// GroupNameIn(Namespace, room), so the same room name in two namespaces never shares edits.
	// Give each namespace its own Store too (or its own redisstore prefix). It may not contain a
	// NUL byte. Optional. Default "" (the group is GroupName(room)).
	Namespace string

	// RoomName names the room of a handshake (ypy's make_room_name). An error refuses the
	// handshake: a *ginws.RefuseError with its status, anything else with 404. Optional. Default
	// DefaultRoomName: the "room" path parameter without its leading "/", for a route
	// "/yjs/*room" (y-websocket appends "/" + the room name to its server URL; room names may
	// contain "/").
	RoomName func(s *ginws.Scope) (string, error)

	// InitialDoc seeds a room the store knows nothing about (ypy's make_ydoc), as a Yjs v1
	// update; nil or an empty update leaves the room empty. The seed is kept in memory and stored
	// only with the room's first change, so clients that change nothing (read-only ones, probes of
	// made-up room names) leave nothing in the store. Several processes may seed the same new room:
	// return the same bytes every time for a room (a fixed client ID, or an update built once and
	// kept) and the seeds merge into one, instead of duplicating the content. Optional.
	InitialDoc func(ctx context.Context, room string) ([]byte, error)

	// Authorize decides what the connection may do, after RoomName and before the handshake
	// is accepted. An error refuses the handshake (a *ginws.RefuseError with its status, anything
	// else with 500). Optional. Default: ReadWrite for everyone (put authentication in the
	// route's middleware, or here).
	Authorize func(ctx context.Context, s *ginws.Scope, room string) (Access, error)

	// OnChange is called after an update was applied to a room in this process — from a local
	// client, from another process through the channel layer, or from Server.Update. Calls run
	// on the room's own goroutine, one at a time per room, in the order the updates were applied,
	// off the path that relays updates to clients; a slow OnChange delays only later OnChange
	// calls and the room's saves, and when more than 256 updates wait for it they are passed
	// merged into one (beyond 4096, the whole document is passed once, as one update: applying it
	// to a copy that already has part of it is harmless in Yjs). update must not be modified. Optional.
	OnChange func(room string, update []byte)

	// SaveDelay is how long updates are collected before they are appended to the store as one
	// merged update. Optional. Zero: the default, 1 s. Negative: every update is saved at once.
	SaveDelay time.Duration

	// CompactAfter is how many updates a room's stored log may hold before it is merged into
	// one. Optional. Default 64; negative is refused.
	CompactAfter int

	// UnloadDelay is how long a room stays in memory after its last connection left (a page
	// reload finds it still there). Pending writes are flushed before it is unloaded, and a room
	// whose saves fail stays loaded, retrying them, until the store has everything; a client
	// that comes later gets the document back from the store. Optional. Zero: the default, 2 s.
	// Negative: the room unloads as soon as it is idle and saved.
	UnloadDelay time.Duration

	// MaxUpdateSize is the largest document update (sync step 2 or update message) a client may
	// send. Yjs connections are accepted with a read limit of this size plus a frame header,
	// whatever the ginws Server's ReadLimit. An update over MaxUpdateSize closes the connection
	// with 4413 (CloseUpdateTooLarge), which y-websocket clients take as final — also a frame over
	// the read limit, which ginws closes before reading it. Optional. Default 8 MiB; negative is
	// refused.
	MaxUpdateSize int

	// MaxDocumentSize bounds a room's document (its merged update plus updates not yet merged);
	// an update that would grow it further is refused and its connection closed with 4413,
	// which y-websocket clients take as final. Yjs connections are accepted with an outbound limit
	// of twice this size (a newcomer is sent the whole document in one frame), whatever the ginws
	// Server's OutboundLimit. Optional. Default 32 MiB; negative is refused, and so is a size whose
	// double does not fit in an int.
	MaxDocumentSize int

	// MaxAwarenessClients bounds the awareness states a room keeps; states of new clients beyond
	// it are ignored. Optional. Default 1000; negative is refused.
	MaxAwarenessClients int

	// MaxClientsPerConn bounds how many awareness client IDs one connection may originate over its
	// life: IDs it publishes a state for that the room does not hold from another connection or
	// process — a new ID, one whose state was removed, or one taken over from another publisher
	// with a newer clock. Re-sending a state the room holds is not counted: stock y-websocket
	// clients re-send every remote state they apply. A y-websocket client originates one ID; a
	// connection that would originate more is closed with 1008. Removing a state does not give its
	// ID back, so a connection cannot churn through IDs either. Optional. Default 16; negative is
	// refused.
	MaxClientsPerConn int

	// MaxAwarenessStateSize bounds one awareness state (a client's presence JSON; real ones are a
	// few hundred bytes). A larger state is ignored — not applied, relayed or stored — and logged
	// once per connection; the connection stays open, so an oversized cursor costs its client its
	// presence, not its document. Optional. Default 64 KiB; negative is refused.
	MaxAwarenessStateSize int

	// MaxAwarenessTotalSize bounds the bytes of all awareness states a room keeps, so the
	// awareness message every joiner is sent stays far below its outbound limit; a state that
	// would take the room past it is ignored like an oversized one. Optional. Default 4 MiB;
	// negative is refused.
	MaxAwarenessTotalSize int

	// AwarenessTimeout is how long an awareness state lives without being renewed (clients renew
	// every 15 s; y-protocols drops states after 30 s). Expired states are forgotten, so late
	// joiners are not shown clients that vanished with a process. Optional. Zero: the default,
	// 30 s. Negative is refused.
	AwarenessTimeout time.Duration

	// ResyncInterval is how often a room asks the other processes that hold it for what it is
	// missing (anti-entropy: it repairs a layer message that was dropped or lost). Optional.
	// Zero: the default, 30 s. Negative: no periodic resync (a room still asks when it loads or
	// finds that its inbox overflowed).
	ResyncInterval time.Duration

	// LayerTimeout bounds each channel layer call and each store call; a compaction of a stored
	// log (load, merge, swap) gets four times as long. Optional. Zero: the default, 5 s. Negative
	// is refused.
	LayerTimeout time.Duration

	// Logger receives the log lines. Optional. Default: the ginws Server's logger.
	Logger *slog.Logger
}

// check refuses the values New cannot run with; see Config.
func (c Config) check() error {
	bad := func(field string, v any, rule string) error {
		return &ginws.ConfigError{Field: "yjs.Config." + field, Value: v, Rule: rule}
	}
	if strings.IndexByte(c.Namespace, 0) >= 0 {
		return bad("Namespace", c.Namespace, "may not contain a NUL byte (it separates the namespace from the room name in GroupNameIn)")
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"AwarenessTimeout", c.AwarenessTimeout},
		{"LayerTimeout", c.LayerTimeout},
	} {
		if d.v < 0 {
			return bad(d.name, d.v, "must not be negative (zero means the default)")
		}
	}
	for _, n := range []struct {
		name string
		v    int
	}{
		{"CompactAfter", c.CompactAfter},
		{"MaxUpdateSize", c.MaxUpdateSize},
		{"MaxDocumentSize", c.MaxDocumentSize},
		{"MaxAwarenessClients", c.MaxAwarenessClients},
		{"MaxClientsPerConn", c.MaxClientsPerConn},
		{"MaxAwarenessStateSize", c.MaxAwarenessStateSize},
		{"MaxAwarenessTotalSize", c.MaxAwarenessTotalSize},
	} {
		if n.v < 0 {
			return bad(n.name, n.v, "must not be negative (zero means the default)")
		}
	}
	if c.MaxDocumentSize > maxDocumentSize {
		return bad("MaxDocumentSize", c.MaxDocumentSize, fmt.Sprintf("must be at most %d: connections queue twice this size", maxDocumentSize))
	}
	return nil
}

// maxDocumentSize is the largest MaxDocumentSize whose outbound limit (twice it plus a frame
// header) fits in an int.
const maxDocumentSize = (math.MaxInt - frameSlack) / 2

// withDefaults fills the zero fields of a checked Config.
func (c Config) withDefaults(ws *ginws.Server) Config {
	if c.Store == nil {
		c.Store = ystore.NewMemory()
	}
	if c.RoomName == nil {
		c.RoomName = DefaultRoomName
	}
	if c.Logger == nil {
		c.Logger = ws.Logger()
	}
	dur := func(d *time.Duration, def time.Duration) {
		if *d == 0 {
			*d = def
		}
	}
	dur(&c.SaveDelay, time.Second)
	dur(&c.UnloadDelay, 2*time.Second)
	dur(&c.AwarenessTimeout, 30*time.Second)
	dur(&c.ResyncInterval, 30*time.Second)
	dur(&c.LayerTimeout, 5*time.Second)
	num := func(v *int, def int) {
		if *v == 0 {
			*v = def
		}
	}
	num(&c.CompactAfter, 64)
	num(&c.MaxUpdateSize, 8<<20)
	num(&c.MaxDocumentSize, 32<<20)
	num(&c.MaxAwarenessClients, 1000)
	num(&c.MaxClientsPerConn, 16)
	num(&c.MaxAwarenessStateSize, 64<<10)
	num(&c.MaxAwarenessTotalSize, 4<<20)
	return c
}

// MaxRoomNameLength bounds room names (in bytes).
const MaxRoomNameLength = 512

// DefaultRoomName returns the route's "room" parameter without its leading "/": for the route
// "/yjs/*room", the request "/yjs/notes/2024" is the room "notes/2024". An empty name is refused
// with 404, a name longer than MaxRoomNameLength with 400.
func DefaultRoomName(s *ginws.Scope) (string, error) {
	name := strings.TrimPrefix(s.Param("room"), "/")
	switch {
	case name == "":
		return "", ginws.Refuse(http.StatusNotFound, "yjs: the URL names no room")
	case len(name) > MaxRoomNameLength:
		return "", ginws.Refuse(http.StatusBadRequest, "yjs: room name too long")
	}
	return name, nil
}

// Sentinel errors. Compare with errors.Is.
var (
	// ErrClosed is returned once Close has begun.
	ErrClosed = errors.New("yjs: server closed")
	// ErrUpdateTooLarge is returned for an update over Config.MaxUpdateSize.
	ErrUpdateTooLarge = errors.New("yjs: update too large")
	// ErrDocumentTooLarge is returned for an update that would grow a document past
	// Config.MaxDocumentSize.
	ErrDocumentTooLarge = errors.New("yjs: document too large")
	// ErrBadUpdate wraps the codec's reason for refusing an update.
	ErrBadUpdate = errors.New("yjs: malformed update")
)

// Close codes used by the consumer, besides ginws' own.
const (
	// CloseDocumentTooLarge closes a connection whose update would grow the document past
	// MaxDocumentSize. y-websocket clients do not reconnect after a 44xx code.
	CloseDocumentTooLarge = 4413
	// CloseUpdateTooLarge closes a connection that sent an update over MaxUpdateSize. It is the
	// same code as CloseDocumentTooLarge (the close reason tells them apart): y-websocket 3.1
	// reconnects after every close code outside 4400-4499, and a client that reconnects re-sends
	// its unsynced update, so any other code, such as 1009, would loop forever.
	CloseUpdateTooLarge = 4413
)
