package yjs

import (
	"context"
	"errors"
	"time"

	"ginws.dev/ginws/yjs/ystore"
	"ginws.dev/ginws/yjs/yupdate"
)

// Persistence of a room, run by the room goroutine: updates collected for SaveDelay are appended
// to the store as one, the stored log is compacted past CompactAfter, and at unload the store is
// reconciled with what the room learned from other processes.
//
// A room holds its document until the store has it: it does not unload while updates wait to be
// saved or after a failed save (saves are retried with a backoff of retryMin doubling up to
// retryMax, each failure logged), and the unload itself retries until it has saved. Only
// Server.Close can give up, when its context ends; it then reports the rooms left unsaved.

// persistState is a room's saving state. Fields marked (mu) are guarded by room.mu; the others
// belong to the room goroutine.
type persistState struct {
	seed         []byte // (mu) InitialDoc's seed, not stored until the room's first change is saved
	unsavedBytes int    // (mu) bytes in room.unsaved
	saveAll      bool   // (mu) room.unsaved overflowed: the next save appends the whole document
	changesAll   bool   // (mu) the OnChange backlog overflowed: OnChange gets the whole document next
	failed       bool   // (mu) the last save failed: the room may not unload

	retry            backoff // of saves
	compactRetry     backoff
	compactNotBefore time.Time // after a failed compaction
}

// Bounds of what waits in memory, beyond which the backlog is replaced by the whole document
// (which holds every update anyway): the updates waiting to be saved, and those waiting for
// OnChange (below maxChangeBatch they are passed one by one, up to maxChangeBacklog merged).
const (
	maxUnsaved       = 1024
	maxChangeBacklog = 4096
)

// Retry delays of saves and compactions after a store failure.
const (
	retryMin = 100 * time.Millisecond
	retryMax = 30 * time.Second
)

// backoff is a doubling retry delay.
type backoff struct{ cur time.Duration }

func (b *backoff) next() time.Duration {
	b.cur = min(max(2*b.cur, retryMin), retryMax)
	return b.cur
}

func (b *backoff) reset() { b.cur = 0 }

// queueSaveLocked adds an applied update to those the next save appends. Callers hold r.mu.
func (r *room) queueSaveLocked(u []byte) {
	p := &r.persist
	if p.saveAll {
		return // the whole document is saved next
	}
	r.unsaved = append(r.unsaved, u)
	p.unsavedBytes += len(u)
	if len(r.unsaved) > maxUnsaved || p.unsavedBytes > r.srv.cfg.MaxDocumentSize {
		clear(r.unsaved)
		r.unsaved, p.unsavedBytes, p.saveAll = nil, 0, true
	}
}

// queueChangeLocked adds an applied update to those OnChange is called with. Callers hold r.mu.
func (r *room) queueChangeLocked(u []byte) {
	p := &r.persist
	if r.srv.cfg.OnChange == nil || p.changesAll {
		return
	}
	r.changes = append(r.changes, u)
	if len(r.changes) > maxChangeBacklog {
		clear(r.changes)
		r.changes, p.changesAll = nil, true
	}
}

// takeChanges returns the updates to pass to OnChange, merged into one when there are many, or
// the whole document when the backlog overflowed.
func (r *room) takeChanges() [][]byte {
	r.mu.Lock()
	changes, all := r.changes, r.persist.changesAll
	r.changes, r.persist.changesAll = nil, false
	r.mu.Unlock()
	if all {
		full, err := r.full()
		if err != nil || full == nil {
			r.log.Error("yjs: the document for a merged OnChange call failed", "error", err)
			return nil
		}
		return [][]byte{full}
	}
	if len(changes) > maxChangeBatch {
		if m, err := mergeUpdates(changes); err == nil {
			changes = [][]byte{m}
		}
	}
	return changes
}

// pendingSave reports whether updates wait to be saved, and whether the room must stay loaded
// (they wait, or the last save failed).
func (r *room) pendingSave() (pending, hold bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	pending = len(r.unsaved) > 0 || r.persist.saveAll
	return pending, pending || r.persist.failed
}

// save appends the updates collected since the last save to the store, as one update (with the
// unstored InitialDoc seed in front of them), and compacts the stored log when it has grown past
// CompactAfter. On failure the updates are kept for the next try.
func (r *room) save() error {
	s := r.srv
	r.mu.Lock()
	parts, all, seed := r.unsaved, r.persist.saveAll, r.persist.seed
	r.unsaved, r.persist.unsavedBytes, r.persist.saveAll = nil, 0, false
	r.mu.Unlock()
	if len(parts) == 0 && !all {
		return nil
	}
	var u []byte
	var err error
	if all {
		u, err = r.full() // holds the seed too
	} else {
		if seed != nil {
			parts = append([][]byte{seed}, parts...)
		}
		u, err = mergeUpdates(parts)
	}
	if err != nil {
		r.log.Error("yjs: merging updates to save failed; saving the whole document next", "error", err)
		r.mu.Lock()
		r.persist.saveAll, r.persist.failed = true, true
		r.mu.Unlock()
		return err
	}
	ctx, cancel := s.opCtx()
	n, err := s.cfg.Store.Append(ctx, r.name, orEmpty(u))
	cancel()
	if err != nil {
		s.stats.storeErrors.Add(1)
		r.mu.Lock()
		if !r.persist.saveAll {
			r.unsaved = append([][]byte{u}, r.unsaved...)
			r.persist.unsavedBytes += len(u)
		}
		r.persist.failed = true
		r.mu.Unlock()
		return err
	}
	s.stats.saves.Add(1)
	r.mu.Lock()
	r.persist.failed = false
	r.persist.seed = nil // stored now, in u
	r.mu.Unlock()
	if n > s.cfg.CompactAfter && !time.Now().Before(r.persist.compactNotBefore) {
		r.compact()
	}
	return nil
}

// compactTimeout bounds one compaction (load, merge, compare-and-swap) of a room's stored log:
// it has its own deadline, longer than a single store call's.
func (s *Server) compactTimeout() time.Duration { return 4 * s.cfg.LayerTimeout }

// compact replaces the stored log by its merge. It merges what the store holds, not this
// process's document, and the store swaps only if the log still starts with what was read, so
// entries appended or compacted meanwhile by other processes are kept. After a failure the next
// compaction waits (doubling, up to retryMax).
func (r *room) compact() {
	s := r.srv
	ctx, cancel := context.WithTimeout(s.stopCtx, s.compactTimeout())
	defer cancel()
	log, err := s.cfg.Store.Load(ctx, r.name)
	if err == nil && len(log) > 1 {
		var m []byte
		if m, err = mergeUpdates(log); err == nil {
			err = s.cfg.Store.Compact(ctx, r.name, log, m)
		}
	}
	switch {
	case err == nil:
		s.stats.compactions.Add(1)
		r.persist.compactRetry.reset()
	case errors.Is(err, ystore.ErrConflict):
		r.log.Debug("yjs: another process compacted the stored log first", "error", err)
	default:
		s.stats.storeErrors.Add(1)
		d := r.persist.compactRetry.next()
		r.persist.compactNotBefore = time.Now().Add(d)
		r.log.Warn("yjs: compacting the stored log failed", "retry_in", d, "error", err)
	}
}

// persistFinal saves what is left when the room unloads, and reconciles the store with the
// document when other processes were expected to store some of it (remoteUnsaved) or, with
// always, when anything was applied to it here. It retries with backoff until it succeeds or ctx
// ends, and returns the last error then.
func (r *room) persistFinal(ctx context.Context, always bool) error {
	for {
		err := r.save()
		if err == nil {
			r.mu.Lock()
			need := r.remoteUnsaved || (always && (r.doc.gen > 0 || len(r.doc.pending) > 0))
			r.mu.Unlock()
			if need {
				rctx, cancel := r.srv.opCtx()
				err = r.reconcile(rctx)
				cancel()
				if err != nil {
					r.srv.stats.storeErrors.Add(1)
				}
			}
		}
		if err == nil {
			return nil
		}
		d := r.persist.retry.next()
		r.log.Warn("yjs: saving the unloading room failed; retrying", "retry_in", d, "error", err)
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return err
		}
	}
}

// reconcile appends to the store whatever the room's document holds that the store lacks:
// updates received from other processes that they may not have stored (a process that died
// before its save, a doc_update sent by another app).
func (r *room) reconcile(ctx context.Context) error {
	s := r.srv
	log, err := s.cfg.Store.Load(ctx, r.name)
	if err != nil {
		return err
	}
	stored, err := mergeUpdates(log)
	if err != nil {
		return err
	}
	sv := []byte{0}
	if stored != nil {
		if sv, err = yupdate.StateVector(stored); err != nil {
			return err
		}
	}
	full, err := r.full()
	if err != nil || full == nil {
		return err
	}
	diff, err := yupdate.Diff(full, sv)
	if err != nil {
		return err
	}
	if !yupdate.IsEmpty(diff) {
		if _, err := s.cfg.Store.Append(ctx, r.name, diff); err != nil {
			return err
		}
		s.stats.saves.Add(1)
	}
	r.mu.Lock()
	r.remoteUnsaved = false
	r.persist.seed = nil
	r.mu.Unlock()
	return nil
}
