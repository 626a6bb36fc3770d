package yjs

import (
	"errors"
	"fmt"
	"time"

	"ginws.dev/ginws/layer"
	"ginws.dev/ginws/yjs/yupdate"
)

// groupRefresh is how often a room renews its group membership, well within the layer's group
// expiry (Channels' default is a day).
const groupRefresh = time.Hour

// run is the room goroutine: it loads the room, then handles layer messages, merges, saves,
// OnChange calls, resyncs and expiry until the room is idle for UnloadDelay or the server closes.
func (r *room) run() {
	s := r.srv
	defer s.wg.Done()
	defer close(r.done)
	if err := r.load(); err != nil {
		r.loadErr = err
		r.log.Error("yjs: loading the room failed", "error", err)
		r.leaveLayer()
		s.forget(r)
		close(r.ready)
		return
	}
	s.stats.loads.Add(1)
	close(r.ready)

	tick := time.NewTicker(r.tickEvery())
	defer tick.Stop()
	lastResync := time.Now()
	var saveTimer, unloadTimer *time.Timer
	var saveC, unloadC <-chan time.Time
	defer func() {
		if saveTimer != nil {
			saveTimer.Stop()
		}
		if unloadTimer != nil {
			unloadTimer.Stop()
		}
	}()
	for {
		saveNow, unloadNow := false, false
		select {
		case <-r.wake:
		case <-saveC:
			saveC, saveNow = nil, true
		case <-unloadC:
			unloadC, unloadNow = nil, true
		case now := <-tick.C:
			r.housekeeping(now, &lastResync)
		case <-s.closing:
			r.finish(true)
			return
		}
		r.work()

		pending, hold := r.pendingSave()
		switch {
		case saveC != nil && !saveNow:
			// a save is scheduled: after SaveDelay, or a retry after a failure
		case saveNow || (pending && s.cfg.SaveDelay < 0):
			if err := r.save(); err != nil {
				d := r.persist.retry.next()
				r.log.Warn("yjs: saving to the store failed; the room stays loaded and retries", "retry_in", d, "error", err)
				saveTimer, saveC = rearm(saveTimer, d)
			} else {
				r.persist.retry.reset()
			}
			pending, hold = r.pendingSave()
			if pending && saveC == nil { // applied while saving
				saveTimer, saveC = rearm(saveTimer, max(s.cfg.SaveDelay, 0))
			}
		case pending:
			saveTimer, saveC = rearm(saveTimer, max(s.cfg.SaveDelay, 0))
		}

		idle := s.idle(r)
		switch {
		case !idle:
			if unloadC != nil {
				unloadTimer.Stop()
				unloadC = nil
			}
		case hold:
			// Never unload with updates the store does not have: the save timer retries, and
			// the unload is armed again once they are saved.
		case unloadNow || s.cfg.UnloadDelay < 0:
			if s.beginUnload(r) {
				r.finish(false)
				return
			}
		case unloadC == nil:
			unloadTimer, unloadC = rearm(unloadTimer, s.cfg.UnloadDelay)
		}
	}
}

func rearm(t *time.Timer, d time.Duration) (*time.Timer, <-chan time.Time) {
	if t == nil {
		t = time.NewTimer(d)
	} else {
		t.Reset(d)
	}
	return t, t.C
}

func (r *room) tickEvery() time.Duration {
	d := r.srv.cfg.AwarenessTimeout / 2
	if ri := r.srv.cfg.ResyncInterval; ri > 0 && ri < d {
		d = ri
	}
	return max(d, 10*time.Millisecond)
}

// load subscribes to the room's group first (so nothing sent meanwhile is missed), then reads the
// store (seeding an unknown room with InitialDoc), then asks the other processes holding the room
// for what the store does not have yet.
func (r *room) load() error {
	s := r.srv
	if r.prev != nil {
		select {
		case <-r.prev:
		case <-s.closing:
			return ErrClosed
		}
	}
	ctx, cancel := s.opCtx()
	defer cancel()
	ch, err := s.layer.NewChannel(ctx, "yjs")
	if err != nil {
		return fmt.Errorf("yjs: new layer channel: %w", err)
	}
	r.channel = ch
	r.unsubscribe, err = layer.Listen(s.layer, ch, layer.Listener{
		Deliver: r.deliver,
		OnError: func(err error) {
			r.srv.stats.layerErrors.Add(1)
			r.log.Warn("yjs: layer receive failed; retrying", "error", err)
		},
	})
	if err != nil {
		return fmt.Errorf("yjs: listen on %s: %w", ch, err)
	}
	if err := s.layer.GroupAdd(ctx, r.group, ch); err != nil {
		return fmt.Errorf("yjs: join group %s: %w", r.group, err)
	}
	r.joinedAt = time.Now()

	log, err := s.cfg.Store.Load(ctx, r.name)
	if err != nil {
		return fmt.Errorf("yjs: load from the store: %w", err)
	}
	if len(log) == 0 && s.cfg.InitialDoc != nil {
		seed, err := s.cfg.InitialDoc(ctx, r.name)
		if err != nil {
			return fmt.Errorf("yjs: InitialDoc: %w", err)
		}
		if len(seed) > 0 && !yupdate.IsEmpty(seed) {
			if err := yupdate.Validate(seed); err != nil {
				return fmt.Errorf("yjs: InitialDoc returned a bad update: %w", err)
			}
			// Kept in memory only: it is stored with the room's first change (see save), so
			// visitors that change nothing — read-only ones, probes of made-up room names —
			// leave nothing in the store.
			seed = append([]byte(nil), seed...)
			r.persist.seed = seed
			log = [][]byte{seed}
		}
	}
	merged, err := mergeUpdates(log)
	if err != nil {
		return err
	}
	r.mu.Lock()
	r.doc.load(merged)
	r.mu.Unlock()
	r.hello(ctx)
	return nil
}

// deliver is the layer's callback: it queues a message for the room goroutine. It must not block
// or call the layer.
func (r *room) deliver(env *layer.Envelope) error {
	if o, _ := env.Message.Str(keyOrigin); o == r.channel {
		return nil // this room's own message, back from the group
	}
	r.mu.Lock()
	if len(r.inbox) >= inboxLimit {
		r.missed = true
		r.mu.Unlock()
		return layer.ErrChannelFull
	}
	r.inbox = append(r.inbox, env.Message)
	r.mu.Unlock()
	r.signal()
	return nil
}

// work handles the queued layer messages, merges the document's tail when it is due, and calls
// OnChange.
func (r *room) work() {
	r.mu.Lock()
	inbox, missed := r.inbox, r.missed
	r.inbox, r.missed = nil, false
	r.mu.Unlock()
	for _, msg := range inbox {
		r.handleLayer(msg)
	}
	if missed {
		ctx, cancel := r.srv.opCtx()
		r.hello(ctx)
		cancel()
	}
	r.mergeTail()
	if f := r.srv.cfg.OnChange; f != nil {
		for _, u := range r.takeChanges() {
			r.callOnChange(f, u)
		}
	}
}

// maxChangeBatch is the backlog of OnChange calls beyond which they are merged into one (see
// takeChanges and maxChangeBacklog).
const maxChangeBatch = 256

func (r *room) callOnChange(f func(string, []byte), u []byte) {
	defer func() {
		if p := recover(); p != nil {
			r.log.Error("yjs: OnChange panicked", "panic", fmt.Sprint(p))
		}
	}()
	f(r.name, u)
}

// mergeTail merges the document's unmerged tail outside the lock, when it has grown enough.
func (r *room) mergeTail() {
	r.mu.Lock()
	if !r.doc.due() {
		r.mu.Unlock()
		return
	}
	parts, n, gen := r.doc.parts(), len(r.doc.pending), r.doc.gen
	r.mu.Unlock()
	m, err := mergeUpdates(parts)
	if err != nil {
		r.log.Error("yjs: merging the document failed", "error", err)
		return
	}
	r.mu.Lock()
	if r.doc.gen == gen { // nobody merged meanwhile; updates applied since stay in the tail
		r.doc.install(m, n)
	}
	r.mu.Unlock()
}

// housekeeping expires awareness states, resyncs with the other processes and renews the group
// membership.
func (r *room) housekeeping(now time.Time, lastResync *time.Time) {
	r.mu.Lock()
	r.aw.expire(now, r.srv.cfg.AwarenessTimeout)
	r.mu.Unlock()
	ctx, cancel := r.srv.opCtx()
	defer cancel()
	if ri := r.srv.cfg.ResyncInterval; ri > 0 && now.Sub(*lastResync) >= ri {
		*lastResync = now
		r.hello(ctx)
	}
	if now.Sub(r.joinedAt) >= groupRefresh {
		if err := r.srv.layer.GroupAdd(ctx, r.group, r.channel); err != nil {
			r.srv.stats.layerErrors.Add(1)
			r.log.Warn("yjs: renewing the group membership failed", "error", err)
		} else {
			r.joinedAt = now
		}
	}
}

// finish ends the room: the layer left first, then the messages that arrived until then applied
// (a doc_update sent while the room unloads is saved, not dropped), then no more joins or
// updates, and the pending updates saved and the store reconciled — retried until done, or until
// Server.Close gives up (serverClosing: then the store is reconciled with everything applied
// here, not only what other processes were expected to store).
func (r *room) finish(serverClosing bool) {
	s := r.srv
	r.leaveLayer()
	r.work()
	r.mu.Lock()
	r.closed = true
	r.mu.Unlock()
	r.work() // updates from clients applied meanwhile, OnChange calls still due
	if err := r.persistFinal(s.stopCtx, serverClosing); err != nil {
		s.stats.storeErrors.Add(1)
		s.noteUnsaved(r.name, err)
		r.log.Error("yjs: the room's last updates could not be saved", "error", err)
	}
	r.mu.Lock()
	r.doc.release()
	r.mu.Unlock()
	s.forget(r)
	s.stats.unloads.Add(1)
	why := "idle"
	if serverClosing {
		why = "server closed"
	}
	r.log.Debug("yjs: room unloaded", "why", why)
}

// leaveLayer discards the room's group membership and stops receiving.
func (r *room) leaveLayer() {
	if r.channel != "" {
		ctx, cancel := r.srv.opCtx()
		if err := r.srv.layer.GroupDiscard(ctx, r.group, r.channel); err != nil && !errors.Is(err, layer.ErrClosed) {
			r.log.Warn("yjs: leaving the group failed", "error", err)
		}
		cancel()
	}
	if r.unsubscribe != nil {
		r.unsubscribe()
	}
}
