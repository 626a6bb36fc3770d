package yjs

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"ginws.dev/ginws"
	"ginws.dev/ginws/layer"
	"ginws.dev/ginws/yjs/yupdate"
)

// Server serves Yjs documents to y-websocket clients through ginws: mount its consumer on a
// route, r.GET("/yjs/*room", ws.Mount(ys.Consumer)), and every client that connects to
// "ws://host/yjs" with a room name shares that room's document and awareness with the other
// clients — in this process and in every process on the same channel layer.
//
// A room lives in memory while it has connections (and Config.UnloadDelay after the last one
// left): one merged document, the awareness states, and one layer subscription for the whole
// process. Its document is kept in Config.Store, so a room that emptied is loaded again for the
// next client.
//
// # Concurrency
//
// A Server is safe for concurrent use. Each loaded room has one goroutine that receives the
// layer's messages for it, saves it, calls OnChange, and unloads it; the connections' handlers
// apply their clients' updates directly, under the room's lock, which is never held across I/O.
type Server struct {
	ws    *ginws.Server
	layer layer.Layer
	cfg   Config
	log   *slog.Logger

	mu      sync.Mutex
	rooms   map[string]*room
	closed  bool
	closing chan struct{} // closed by Close: room goroutines flush and stop
	wg      sync.WaitGroup
	unsaved map[string]error // rooms that unloaded without saving everything (Close gave up)

	// stopCtx ends when Close's context does: unloading rooms stop retrying their saves.
	stopCtx context.Context
	giveUp  context.CancelFunc

	stats struct {
		loads, unloads, applied, relayed, refused, saves, compactions, layerErrors, storeErrors atomic.Uint64
		docBytes                                                                                atomic.Int64 // Stats.DocumentBytes, kept by the rooms' documents
	}
}

// Stats is a snapshot of a Server's counters.
type Stats struct {
	Rooms          int    // rooms loaded now
	Loads, Unloads uint64 // rooms loaded and unloaded so far
	Applied        uint64 // updates applied (from clients, the layer and Update)
	Refused        uint64 // client updates refused (read-only, malformed, over a limit)
	Saves          uint64 // store appends
	Compactions    uint64 // store compactions
	LayerErrors    uint64 // failed channel layer calls (repaired by the next resync)
	StoreErrors    uint64 // failed store calls (retried)
	// DocumentBytes is the size of the loaded rooms' documents in this process: each room's
	// merged update plus the updates applied since its last merge, as kept in memory.
	DocumentBytes int64
}

// New returns a Server whose rooms talk to each other across processes through ws.Layer(). It
// panics with a *ginws.ConfigError if a field of cfg is invalid (see Config).
func New(ws *ginws.Server, cfg Config) *Server {
	if err := cfg.check(); err != nil {
		panic(err)
	}
	cfg = cfg.withDefaults(ws)
	stop, giveUp := context.WithCancel(context.Background())
	return &Server{
		ws:      ws,
		layer:   ws.Layer(),
		cfg:     cfg,
		log:     cfg.Logger,
		rooms:   make(map[string]*room),
		closing: make(chan struct{}),
		stopCtx: stop,
		giveUp:  giveUp,
	}
}

// Consumer returns a new consumer for one connection; pass the method itself to ginws.Mount:
//
//	r.GET("/yjs/*room", ws.Mount(ys.Consumer))
func (s *Server) Consumer() ginws.Consumer { return &consumer{srv: s} }

// GroupName returns the channel layer group that carries a room's traffic between processes,
// for a Server whose Config.Namespace is "" (see GroupNameIn): "yjs." and the first 40 hex digits
// of the room name's SHA-256, which always follows Channels' naming rules whatever the room is
// called. Another process may group_send {"type": "doc_update", "update": <bytes>} to it — from
// Django with channels_redis:
//
//	group = "yjs." + hashlib.sha256(room.encode()).hexdigest()[:40]
//	async_to_sync(get_channel_layer().group_send)(group, {"type": "doc_update", "update": update})
//
// The update is validated, applied, stored and relayed to the room's clients in every process
// that holds the room. (A room loaded nowhere receives nothing: use Server.Update, which stores.)
func GroupName(room string) string { return GroupNameIn("", room) }

// GroupNameIn returns the group of a room in a namespace (Config.Namespace). For "" it is
// GroupName(room); otherwise "yjs.ns." and the first 40 hex digits of the SHA-256 of the
// namespace, a NUL byte and the room name — a namespace has no NUL byte, so the same room name in
// two namespaces (or in none) never shares a group. From Django:
//
//	group = "yjs.ns." + hashlib.sha256((namespace + "\0" + room).encode()).hexdigest()[:40]
func GroupNameIn(namespace, room string) string {
	if namespace == "" {
		sum := sha256.Sum256([]byte(room))
		return "yjs." + hex.EncodeToString(sum[:20])
	}
	sum := sha256.Sum256([]byte(namespace + "\x00" + room))
	return "yjs.ns." + hex.EncodeToString(sum[:20])
}

// GroupName returns the group of a room of this Server: GroupNameIn(Config.Namespace, room).
func (s *Server) GroupName(room string) string { return GroupNameIn(s.cfg.Namespace, room) }

// Update applies a Yjs v1 update to a room as if a client had sent it (ypy's send_doc_update):
// it is stored, relayed to the room's clients in every process, and passed to OnChange. A room
// not loaded in this process is not loaded for it: the update is appended to the store and sent
// to the processes that hold the room.
func (s *Server) Update(ctx context.Context, room string, update []byte) error {
	if err := s.checkUpdate(update); err != nil {
		return err
	}
	if yupdate.IsEmpty(update) {
		return nil
	}
	update = append([]byte(nil), update...)
	if r := s.loaded(ctx, room); r != nil {
		defer s.release(r)
		return r.applyLocal(ctx, nil, update)
	}
	if err := s.closedErr(); err != nil {
		return err
	}
	if _, err := s.cfg.Store.Append(ctx, room, update); err != nil {
		return fmt.Errorf("yjs: store update for room %q: %w", room, err)
	}
	s.stats.saves.Add(1)
	err := s.layer.GroupSend(ctx, s.GroupName(room), layer.Message{
		"type": typeDocUpdate, keyUpdate: update, keyPersisted: true,
	})
	if err != nil {
		s.stats.layerErrors.Add(1)
		return fmt.Errorf("yjs: relay update for room %q: %w", room, err)
	}
	return nil
}

// Document returns a room's document as one Yjs v1 update: the state this process holds if the
// room is loaded here, else what the store holds (seeded by InitialDoc if empty — without
// storing the seed). Updates other processes have not saved yet (see SaveDelay) are not in it.
func (s *Server) Document(ctx context.Context, room string) ([]byte, error) {
	if r := s.loaded(ctx, room); r != nil {
		defer s.release(r)
		full, err := r.full()
		if err != nil {
			return nil, err
		}
		return append([]byte(nil), orEmpty(full)...), nil
	}
	if err := s.settled(ctx, room); err != nil {
		return nil, err
	}
	log, err := s.cfg.Store.Load(ctx, room)
	if err != nil {
		return nil, fmt.Errorf("yjs: load room %q: %w", room, err)
	}
	if len(log) == 0 && s.cfg.InitialDoc != nil {
		seed, err := s.cfg.InitialDoc(ctx, room)
		if err != nil {
			return nil, fmt.Errorf("yjs: InitialDoc for room %q: %w", room, err)
		}
		if len(seed) > 0 {
			log = [][]byte{seed}
		}
	}
	m, err := mergeUpdates(log)
	if err != nil {
		return nil, err
	}
	return append([]byte(nil), orEmpty(m)...), nil
}

// Rooms returns the names of the rooms held in memory by this process, sorted: loaded, loading,
// or unloading (until their last save is done).
func (s *Server) Rooms() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	names := make([]string, 0, len(s.rooms))
	for name := range s.rooms {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}

// Stats returns the server's counters.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	n := len(s.rooms)
	s.mu.Unlock()
	return Stats{
		Rooms: n, Loads: s.stats.loads.Load(), Unloads: s.stats.unloads.Load(),
		Applied: s.stats.applied.Load(), Refused: s.stats.refused.Load(),
		Saves: s.stats.saves.Load(), Compactions: s.stats.compactions.Load(),
		LayerErrors: s.stats.layerErrors.Load(), StoreErrors: s.stats.storeErrors.Load(),
		DocumentBytes: s.stats.docBytes.Load(),
	}
}

// Close saves every room's pending updates, leaves the channel layer and stops the rooms'
// goroutines; later handshakes are refused with 503 and the messages of connections still open
// close them with 1001. Call it after the ginws Server's Shutdown, which closes the connections.
// Each room saves what it has not saved and reconciles the store with its document, retrying
// failed store calls until ctx ends; then Close gives up (it returns at most a second later), and
// returns ctx's error. It returns an
// error wrapping ErrUnsaved, naming the rooms, if updates of some room could not be stored.
// Closing twice is harmless.
func (s *Server) Close(ctx context.Context) error {
	s.mu.Lock()
	if !s.closed {
		s.closed = true
		close(s.closing)
	}
	s.mu.Unlock()
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
		s.giveUp()
		return s.unsavedErr()
	case <-ctx.Done():
		// The rooms stop retrying, their store calls are cancelled, and they report what they
		// could not save: wait for that briefly (an OnChange call may still be running).
		s.giveUp()
		t := time.NewTimer(time.Second)
		defer t.Stop()
		select {
		case <-done:
		case <-t.C:
		}
		return errors.Join(ctx.Err(), s.unsavedErr())
	}
}

// ErrUnsaved is returned by Close when updates of some rooms could not be stored.
var ErrUnsaved = errors.New("yjs: updates could not be saved")

// noteUnsaved records a room that unloaded with updates the store may not have.
func (s *Server) noteUnsaved(room string, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.unsaved == nil {
		s.unsaved = make(map[string]error)
	}
	s.unsaved[room] = err
}

func (s *Server) unsavedErr() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.unsaved) == 0 {
		return nil
	}
	names := make([]string, 0, len(s.unsaved))
	errs := make([]error, 0, len(s.unsaved))
	for name, err := range s.unsaved {
		names = append(names, name)
		errs = append(errs, err)
	}
	slices.Sort(names)
	return fmt.Errorf("%w: rooms %q: %w", ErrUnsaved, names, errors.Join(errs...))
}

func (s *Server) closedErr() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	return nil
}

// checkUpdate applies the size limit and the codec's validation to an update from outside.
func (s *Server) checkUpdate(u []byte) error {
	if len(u) > s.cfg.MaxUpdateSize {
		return fmt.Errorf("%w: %d bytes, the limit is %d", ErrUpdateTooLarge, len(u), s.cfg.MaxUpdateSize)
	}
	if err := yupdate.Validate(u); err != nil {
		return fmt.Errorf("%w: %w", ErrBadUpdate, err)
	}
	return nil
}

// acquire returns the loaded room, loading it first if needed, with a reference the caller
// gives back with release.
func (s *Server) acquire(ctx context.Context, name string) (*room, error) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, ErrClosed
	}
	r := s.rooms[name]
	if r == nil || r.unloading {
		nr := newRoom(s, name)
		if r != nil {
			nr.prev = r.done // load only after the old instance has flushed its writes
		}
		r = nr
		s.rooms[name] = r
		s.wg.Add(1)
		go r.run()
	}
	r.refs++
	s.mu.Unlock()
	select {
	case <-r.ready:
	case <-ctx.Done():
		s.release(r)
		return nil, ctx.Err()
	}
	if r.loadErr != nil {
		s.release(r)
		return nil, r.loadErr
	}
	return r, nil
}

// loaded returns the room with a reference if it is loaded (or loading) here, else nil.
func (s *Server) loaded(ctx context.Context, name string) *room {
	s.mu.Lock()
	r := s.rooms[name]
	if r == nil || r.unloading || s.closed {
		s.mu.Unlock()
		return nil
	}
	r.refs++
	s.mu.Unlock()
	select {
	case <-r.ready:
	case <-ctx.Done():
		s.release(r)
		return nil
	}
	if r.loadErr != nil {
		s.release(r)
		return nil
	}
	return r
}

// settled waits until no instance of the room is unloading here, so that the store holds
// everything it saved.
func (s *Server) settled(ctx context.Context, name string) error {
	s.mu.Lock()
	r := s.rooms[name]
	unloading := r != nil && r.unloading
	s.mu.Unlock()
	if !unloading {
		return nil
	}
	select {
	case <-r.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// release gives back a reference taken by acquire or loaded.
func (s *Server) release(r *room) {
	s.mu.Lock()
	r.refs--
	idle := r.refs == 0
	s.mu.Unlock()
	if idle {
		r.signal()
	}
}

// beginUnload marks an idle room as unloading, so that a newcomer loads a new instance of it.
func (s *Server) beginUnload(r *room) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r.refs > 0 {
		return false
	}
	r.unloading = true
	return true
}

// idle reports whether nobody holds the room.
func (s *Server) idle(r *room) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return r.refs == 0
}

// forget removes an unloaded (or failed) room from the map.
func (s *Server) forget(r *room) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r.unloading = true
	if s.rooms[r.name] == r {
		delete(s.rooms, r.name)
	}
}

// opCtx returns a context for one layer or store call made on a room's behalf. It ends early
// when Close gives up.
func (s *Server) opCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(s.stopCtx, s.cfg.LayerTimeout)
}
