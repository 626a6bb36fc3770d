package yjs

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"ginws.dev/ginws"
	"ginws.dev/ginws/layer"
	"ginws.dev/ginws/yjs/internal/lib0"
	"ginws.dev/ginws/yjs/yproto"
	"ginws.dev/ginws/yjs/yupdate"
)

// room is one document loaded in this process: the merged document, the awareness states, the
// local connections, and one subscription to the room's layer group for the whole process.
//
// Connection handlers call join, leave, applyLocal, answerStep1 and the awareness methods; they
// take r.mu briefly and never hold it across I/O (sends to connections only queue frames). The
// room goroutine (run) owns everything else: layer messages, merges of the document's tail,
// saves, OnChange calls, resyncs with other processes, and the unload.
type room struct {
	srv   *Server
	name  string
	group string
	log   *slog.Logger

	// Lifecycle, guarded by srv.mu.
	refs      int
	unloading bool

	ready   chan struct{}   // closed once loading finished; loadErr tells how
	loadErr error           // written before ready is closed
	done    chan struct{}   // closed once the room has saved and left the layer
	prev    <-chan struct{} // the previous instance's done, when it was still unloading

	channel     string    // the room's process-local layer channel: its address and origin id
	unsubscribe func()    // stops layer.Listen
	joinedAt    time.Time // of the last GroupAdd, refreshed before the group membership expires

	wake chan struct{} // capacity 1: there is work for the room goroutine

	mu            sync.Mutex
	doc           document
	members       []*consumer
	aw            awareness
	unsaved       [][]byte // updates to append to the store
	remoteUnsaved bool     // applied updates that another process is expected to store: reconciled at unload
	changes       [][]byte // for OnChange
	inbox         []layer.Message
	missed        bool // the inbox overflowed: ask the other processes for what was lost
	closed        bool // unloaded or the server closed: no more joins or updates
	persist       persistState
}

// inboxLimit bounds the layer messages waiting for the room goroutine.
const inboxLimit = 4096

func newRoom(s *Server, name string) *room {
	return &room{
		srv:   s,
		name:  name,
		group: s.GroupName(name),
		log:   s.log.With("room", name),
		ready: make(chan struct{}),
		done:  make(chan struct{}),
		wake:  make(chan struct{}, 1),
		aw:    awareness{maxState: s.cfg.MaxAwarenessStateSize, maxTotal: s.cfg.MaxAwarenessTotalSize},
		doc:   document{total: &s.stats.docBytes},
	}
}

func (r *room) signal() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// join adds c to the room and sends it what y-websocket clients expect first: sync step 1 with
// the room's state vector, then the known awareness states. The state vector is computed before,
// outside the lock (it costs O(document)): an update applied meanwhile is not in it, which only
// makes the client send it back (and the room drop it as nothing new), while the client still
// gets it in the answer to its own step 1. c is registered and both messages are queued under the
// lock that relays updates and awareness, so c misses nothing applied afterwards, and the step 1
// is the first frame it gets: a stock client answers it before it relays any awareness state,
// which keeps its hello (see helloPhase) the first thing it says about awareness.
func (r *room) join(c *consumer) error {
	_, sv, err := r.snapshot()
	if err != nil {
		return err
	}
	step1 := yproto.AppendSyncStep1(nil, sv)
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return ErrClosed
	}
	r.members = append(r.members, c)
	if err := c.SendBinary(step1); err != nil {
		return err
	}
	if states := r.aw.all(); len(states) > 0 {
		return c.SendBinary(yproto.AppendAwareness(nil, yproto.AppendAwarenessUpdate(nil, states)))
	}
	return nil
}

// full returns the whole document as one update (nil when empty). The merge of the unmerged tail
// runs outside the lock; the result is kept unless another merge was installed meanwhile. The
// returned slice is never modified.
func (r *room) full() ([]byte, error) {
	r.mu.Lock()
	if len(r.doc.pending) == 0 {
		m := r.doc.merged
		r.mu.Unlock()
		return m, nil
	}
	parts, n, gen := r.doc.parts(), len(r.doc.pending), r.doc.gen
	r.mu.Unlock()
	m, err := mergeUpdates(parts)
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	if r.doc.gen == gen {
		r.doc.install(m, n)
	}
	r.mu.Unlock()
	return m, nil
}

// snapshot returns the whole document and its state vector, computed once per version of the
// document (a crowd reconnecting to an idle room costs one state vector).
func (r *room) snapshot() (full, sv []byte, err error) {
	r.mu.Lock()
	if sv, ok := r.doc.cachedSV(); ok {
		full = r.doc.merged
		r.mu.Unlock()
		return full, sv, nil
	}
	r.mu.Unlock()
	if full, err = r.full(); err != nil {
		return nil, nil, err
	}
	if full == nil {
		return nil, []byte{0}, nil
	}
	if sv, err = yupdate.StateVector(full); err != nil {
		return nil, nil, err
	}
	r.mu.Lock()
	if len(r.doc.pending) == 0 && sameBytes(r.doc.merged, full) {
		r.doc.sv, r.doc.svGen, r.doc.svValid = sv, r.doc.gen, true
	}
	r.mu.Unlock()
	return full, sv, nil
}

// sameBytes reports whether a and b are the same slice (not just equal contents).
func sameBytes(a, b []byte) bool {
	return len(a) == len(b) && (len(a) == 0 || &a[0] == &b[0])
}

// leave removes c and ends the awareness states it published (a closed tab, a killed process, a
// dead network: Disconnect runs in every case), telling every process.
func (r *room) leave(ctx context.Context, c *consumer) {
	r.mu.Lock()
	for i, m := range r.members {
		if m == c {
			last := len(r.members) - 1
			r.members[i] = r.members[last]
			r.members[last] = nil
			r.members = r.members[:last]
			break
		}
	}
	removed := r.aw.remove(c.claimed, c, time.Now())
	c.claimed = nil
	var enc []byte
	if len(removed) > 0 {
		enc = yproto.AppendAwarenessUpdate(nil, removed)
		r.broadcastLocked(yproto.AppendAwareness(nil, enc), nil)
	}
	closed := r.closed
	r.mu.Unlock()
	if enc != nil && !closed {
		r.publish(ctx, layer.Message{"type": typeAwareness, keyUpdate: enc, keyOrigin: r.channel})
	}
}

// broadcastLocked queues msg for every local member but skip. The frame is built once and every
// member writes the same bytes. Callers hold r.mu.
func (r *room) broadcastLocked(msg []byte, skip *consumer) {
	var frame *ginws.PreparedMessage
	for _, m := range r.members {
		if m != skip {
			if frame == nil {
				frame = ginws.PrepareBinary(msg)
			}
			_ = m.SendPrepared(frame) // a closing member misses it; nothing else can fail
		}
	}
}

// apply applies a validated, non-empty update and relays it to the local members but from. A
// stored update goes to the store with the room's next save; otherwise another process stores
// it, and the room reconciles the store with its document when it unloads.
func (r *room) apply(update []byte, from *consumer, store bool) error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return ErrClosed
	}
	if r.doc.size()+len(update) > r.srv.cfg.MaxDocumentSize {
		// size counts the unmerged tail as it came; a merge drops what it repeats. Fold it and
		// look again before refusing.
		tail := len(r.doc.pending) > 0
		r.mu.Unlock()
		if !tail {
			return ErrDocumentTooLarge
		}
		if _, err := r.full(); err != nil {
			return err
		}
		r.mu.Lock()
		if r.closed {
			r.mu.Unlock()
			return ErrClosed
		}
		if r.doc.size()+len(update) > r.srv.cfg.MaxDocumentSize {
			r.mu.Unlock()
			return ErrDocumentTooLarge
		}
	}
	r.doc.add(update)
	r.srv.stats.applied.Add(1) // before the relay: whoever sees the update sees it counted
	r.broadcastLocked(yproto.AppendSyncUpdate(nil, update), from)
	if store {
		r.queueSaveLocked(update)
	} else {
		r.remoteUnsaved = true
	}
	r.queueChangeLocked(update)
	r.mu.Unlock()
	r.signal()
	return nil
}

// applyLocal applies an update from a local client (from) or Server.Update (from == nil) and
// sends it to the other processes.
func (r *room) applyLocal(ctx context.Context, from *consumer, update []byte) error {
	if err := r.apply(update, from, true); err != nil {
		return err
	}
	r.publish(ctx, layer.Message{"type": typeUpdate, keyUpdate: update, keyOrigin: r.channel})
	return nil
}

// novel returns the part of a validated update that the room's document lacks, or nil when it
// adds nothing (see yupdate.Novel). It costs a merge of the tail, if any, and a pass over the
// document, outside the lock.
func (r *room) novel(update []byte) ([]byte, error) {
	full, err := r.full()
	if err != nil {
		return nil, err
	}
	return yupdate.Novel(update, orEmpty(full))
}

// answerStep1 answers a client's sync step 1 with the part of the document it lacks.
func (r *room) answerStep1(c *consumer, sv []byte) error {
	full, err := r.full()
	if err != nil {
		return err
	}
	diff, err := yupdate.Diff(orEmpty(full), sv)
	if err != nil {
		return errBadStateVector{err}
	}
	return c.SendBinary(yproto.AppendSyncStep2(nil, diff))
}

type errBadStateVector struct{ err error }

func (e errBadStateVector) Error() string { return "yjs: malformed state vector: " + e.err.Error() }
func (e errBadStateVector) Unwrap() error { return e.err }

// errTooManyClients is returned when a connection claims more awareness clients than allowed.
var errTooManyClients = errors.New("yjs: connection publishes too many awareness clients")

// awarenessFromClient applies an awareness update from c and relays what changed to every local
// member, c included (y-websocket clients count the echo as a sign of life), and to the other
// processes.
//
// Only the IDs c originates count against MaxClientsPerConn (see awareness.claims): a stock
// client re-sends every remote state it applies, and those relays repeat what the room has.
//
// When update is c's hello (its own state, sent as it connects), c is told to renew it: it is
// sent a null state for its own ID with the clock the room holds, and a y-protocols client that
// receives a removal of its own live state re-sends it with the next clock. Its peers need that
// clock: a client that lost its connection drops its peers' states but keeps their clocks, and
// a client that comes back re-sends its state with its unchanged clock, which peers that saw it
// before ignore as not newer — after a server restart, every peer, until the state's next renewal
// (every 15 s). The null reaches c alone: from any other client it would be a removal of a state
// the room holds, so a connection can only make itself renew.
func (r *room) awarenessFromClient(ctx context.Context, c *consumer, update []byte, hello bool) error {
	entries, err := yproto.DecodeAwareness(update)
	if err != nil {
		return err
	}
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return ErrClosed
	}
	if !c.mayClaim(r.aw.claims(entries, c), r.srv.cfg.MaxClientsPerConn) {
		r.mu.Unlock()
		return errTooManyClients
	}
	r.aw.refused = 0
	acc := r.aw.apply(entries, c, time.Now(), r.srv.cfg.MaxAwarenessClients)
	c.track(acc)
	ignored, roomTotal := 0, r.aw.bytes
	if r.aw.refused > 0 && !c.oversized {
		c.oversized, ignored = true, r.aw.refused
	}
	var enc []byte
	if len(acc) > 0 {
		enc = yproto.AppendAwarenessUpdate(nil, acc)
		r.broadcastLocked(yproto.AppendAwareness(nil, enc), nil)
	}
	if hello && len(entries) == 1 && !isNull(entries[0].State) {
		// The room's clock for the ID is at least the hello's unless its state was refused (too
		// large, room full): then there is nothing for the client to renew.
		id := entries[0].ClientID
		if clock, ok := r.aw.clock(id); ok && clock >= entries[0].Clock && clock < lib0.MaxSafeInteger {
			renew := []yproto.AwarenessEntry{{ClientID: id, Clock: clock, State: nullState}}
			_ = c.SendBinary(yproto.AppendAwareness(nil, yproto.AppendAwarenessUpdate(nil, renew)))
		}
	}
	r.mu.Unlock()
	if ignored > 0 {
		r.log.Warn("yjs: awareness states over MaxAwarenessStateSize or MaxAwarenessTotalSize ignored (logged once per connection)",
			"ignored", ignored, "max_state", r.srv.cfg.MaxAwarenessStateSize, "max_total", r.srv.cfg.MaxAwarenessTotalSize, "room_total", roomTotal)
	}
	if enc != nil {
		r.publish(ctx, layer.Message{"type": typeAwareness, keyUpdate: enc, keyOrigin: r.channel})
	}
	return nil
}

// awarenessMessage returns every known state as an awareness message (for query-awareness).
func (r *room) awarenessMessage() []byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	return yproto.AppendAwareness(nil, yproto.AppendAwarenessUpdate(nil, r.aw.all()))
}

// publish group-sends msg to the other processes holding the room. A failure is logged and
// counted; the next resync repairs what was lost.
func (r *room) publish(ctx context.Context, msg layer.Message) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.srv.cfg.LayerTimeout)
	defer cancel()
	if err := r.srv.layer.GroupSend(ctx, r.group, msg); err != nil {
		r.srv.stats.layerErrors.Add(1)
		r.log.Warn("yjs: sending to the other processes failed; the next resync repairs it", "type", msg.Type(), "error", err)
	}
}
