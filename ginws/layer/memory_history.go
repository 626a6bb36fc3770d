package layer

import (
	"context"
	"sync"
	"time"
)

// memHistory is the history of one group of a Memory: a ring of its last messages.
//
// Lock order: mu, then Memory.mu. mu serializes the group's sends and joins from a position, so
// that offsets are handed out in delivery order and a join sees every message either in the ring
// or live, never both, never neither.
type memHistory struct {
	rule HistoryRule // immutable

	mu    sync.Mutex
	epoch string    // guarded by mu
	top   uint64    // the last offset handed out; guarded by mu
	ring  []histMsg // guarded by mu; ring[(start+i)%len(ring)], oldest first; grows up to rule.Size
	start int       // guarded by mu; 0 until the ring is full
	used  time.Time // last send or join; guarded by mu, read by the sweep under Memory.mu and mu
}

// histMsg is one message of a history: its Envelope, shared with the live recipients (so that
// what they encoded once is reused by a replay), and when it was sent.
type histMsg struct {
	env *Envelope
	at  time.Time
}

// historyOf returns group's history, creating it.
func (l *Memory) historyOf(group string, rule HistoryRule) (*memHistory, error) {
	l.mu.RLock()
	h, closed := l.history[group], l.closed
	l.mu.RUnlock()
	if closed {
		return nil, ErrClosed
	}
	if h != nil {
		return h, nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if h = l.history[group]; h == nil {
		h = &memHistory{rule: rule, epoch: newEpoch()}
		l.history[group] = h
	}
	return h, nil
}

// groupSendHistory sends m to group with the next position, and keeps it in the history.
func (l *Memory) groupSendHistory(group string, m Message, rule HistoryRule) error {
	h, err := l.historyOf(group, rule)
	if err != nil {
		return err
	}
	now := time.Now()
	h.mu.Lock()
	defer h.mu.Unlock()
	h.top++
	env := NewEnvelope(m, group)
	env.Position = Position{Epoch: h.epoch, Offset: h.top}
	h.add(env, now)
	return l.groupSend(group, m, env)
}

// add appends env to the ring, replacing the oldest message when it is full. Callers hold h.mu.
func (h *memHistory) add(env *Envelope, now time.Time) {
	h.used = now
	m := histMsg{env: env, at: now}
	if len(h.ring) < h.rule.Size {
		h.ring = append(h.ring, m)
		return
	}
	h.ring[h.start] = m
	h.start = (h.start + 1) % len(h.ring)
}

// after returns the kept messages younger than the rule's Age with offsets above off, oldest
// first, and whether they start right after off. Callers hold h.mu.
func (h *memHistory) after(off uint64, now time.Time) (out []*Envelope, complete bool) {
	cutoff := now.Add(-h.rule.Age)
	next := off + 1
	complete = true
	for i := range h.ring {
		m := h.ring[(h.start+i)%len(h.ring)]
		if m.at.Before(cutoff) || m.env.Position.Offset <= off {
			continue
		}
		if len(out) == 0 && m.env.Position.Offset != next {
			complete = false
		}
		out = append(out, m.env)
	}
	if len(out) == 0 && h.top > off {
		complete = false // everything after off was trimmed
	}
	return out, complete
}

// GroupAddSince adds channel to group and delivers the group's messages after since first (see
// Resumer). Replayed messages reach a subscriber through its deliver function, or wait in the
// channel's queue (within its capacity) for Receive.
func (l *Memory) GroupAddSince(ctx context.Context, group, channel string, since Position) (Recovery, error) {
	rule, ok := l.histories.Of(group)
	if !ok {
		return Recovery{Gap: !since.IsZero()}, l.GroupAdd(ctx, group, channel)
	}
	if err := ValidateGroupName(group); err != nil {
		return Recovery{}, err
	}
	h, err := l.historyOf(group, rule)
	if err != nil {
		return Recovery{}, err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if err := l.GroupAdd(ctx, group, channel); err != nil {
		return Recovery{}, err
	}
	now := time.Now()
	h.used = now
	rec := Recovery{Last: Position{Epoch: h.epoch, Offset: h.top}}
	if since.IsZero() {
		return rec, nil
	}
	var replay []*Envelope
	switch {
	case since.Epoch != h.epoch || since.Offset > h.top:
		replay, _ = h.after(0, now)
		rec.Gap = true
	default:
		var complete bool
		replay, complete = h.after(since.Offset, now)
		rec.Gap = !complete
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	ch := l.channels[channel] // GroupAdd made it
	if ch == nil || l.closed {
		return rec, ErrClosed
	}
	for _, env := range replay {
		var ok bool
		if ch.deliver != nil {
			ok = ch.deliver(env) == nil
		} else {
			ok = l.push(ch, env.Message, now)
		}
		if !ok {
			l.dropped.Add(1)
			continue
		}
		rec.Replayed++
	}
	return rec, nil
}

// sweepHistory forgets the histories of groups that had no send and no join for longer than the
// group expiry: their messages are older than any Age by then, and a later message starts a new
// epoch. Callers hold l.mu.
func (l *Memory) sweepHistory(now time.Time) {
	cutoff := now.Add(-l.groupExpiry)
	for g, h := range l.history {
		if h.mu.TryLock() { // busy means used
			if h.used.Before(cutoff) && !h.used.IsZero() {
				delete(l.history, g)
			}
			h.mu.Unlock()
		}
	}
}
