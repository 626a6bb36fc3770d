package yjs

import (
	"context"

	"ginws.dev/ginws/yjs/yupdate"
)

// Persistence of a room, run by the room goroutine: updates collected for SaveDelay are appended
// to the store as one, the stored log is compacted past CompactAfter, and at unload the store is
// reconciled with what the room learned from other processes.

// save appends the updates collected since the last save to the store, as one update, and
// compacts the stored log when it has grown past CompactAfter. On failure the updates are kept
// for the next try.
func (r *room) save() error {
	s := r.srv
	r.mu.Lock()
	parts := r.unsaved
	r.unsaved = nil
	r.mu.Unlock()
	if len(parts) == 0 {
		return nil
	}
	u, err := mergeUpdates(parts)
	if err != nil {
		// The document holds them: the reconciliation at unload stores them.
		r.log.Error("yjs: merging updates to save failed", "error", err)
		r.mu.Lock()
		r.remoteUnsaved = true
		r.mu.Unlock()
		return nil
	}
	ctx, cancel := s.opCtx()
	defer cancel()
	n, err := s.cfg.Store.Append(ctx, r.name, u)
	if err != nil {
		s.stats.storeErrors.Add(1)
		r.log.Warn("yjs: saving to the store failed; retrying", "error", err)
		r.mu.Lock()
		r.unsaved = append([][]byte{u}, r.unsaved...)
		r.mu.Unlock()
		return err
	}
	s.stats.saves.Add(1)
	if n > s.cfg.CompactAfter {
		r.compact(ctx)
	}
	return nil
}

// compact replaces the stored log by its merge. It merges what the store holds, not this
// process's document, so entries appended meanwhile by other processes are kept.
func (r *room) compact(ctx context.Context) {
	s := r.srv
	log, err := s.cfg.Store.Load(ctx, r.name)
	if err == nil && len(log) > 1 {
		var m []byte
		if m, err = mergeUpdates(log); err == nil {
			err = s.cfg.Store.Compact(ctx, r.name, m, len(log))
		}
		if err == nil {
			s.stats.compactions.Add(1)
		}
	}
	if err != nil {
		s.stats.storeErrors.Add(1)
		r.log.Warn("yjs: compacting the stored log failed", "error", err)
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
	if err != nil || yupdate.IsEmpty(diff) {
		return err
	}
	if _, err := s.cfg.Store.Append(ctx, r.name, diff); err != nil {
		return err
	}
	s.stats.saves.Add(1)
	return nil
}
