package yjs

import (
	"slices"
	"time"

	"ginws.dev/ginws/yjs/yproto"
)

// awareness is a room's view of the y-protocols awareness states: clientID → (clock, state). It
// applies updates with the rule y-protocols clients use, so that what the server relays and what
// it shows late joiners agree with what clients compute. A removed state stays as a tombstone
// (its clock) for a while, so a delayed older update cannot bring it back.
//
// Two bounds keep one hostile connection from filling a room with presence: a state larger than
// maxState bytes is ignored, and so is one that would take the live states past maxTotal bytes
// (0: no bound). refused counts such entries, for the caller to log.
//
// Not safe for concurrent use: the room's mutex guards it.
type awareness struct {
	states map[uint64]*awState
	live   int // entries with a state
	bytes  int // total size of the live states

	maxState, maxTotal int
	refused            int
}

type awState struct {
	clock uint64
	state []byte    // raw JSON; nil once removed
	owner *consumer // the local connection that published it; nil when it came through the layer
	seen  time.Time // when it was last set or renewed
}

var nullState = []byte("null")

func isNull(state []byte) bool { return len(state) == 0 || string(state) == "null" }

// apply applies decoded entries published by owner (nil: another process), and returns the
// entries it accepted, in order, ready to be relayed. max bounds the live states kept.
func (a *awareness) apply(entries []yproto.AwarenessEntry, owner *consumer, now time.Time, max int) []yproto.AwarenessEntry {
	if a.states == nil {
		a.states = make(map[uint64]*awState)
	}
	var accepted []yproto.AwarenessEntry
	for _, e := range entries {
		cur := a.states[e.ClientID]
		remove := isNull(e.State)
		if !remove && !a.fits(cur, e.State) {
			a.refused++
			continue
		}
		if !a.newer(cur, e) {
			continue
		}
		if cur == nil {
			if remove || a.live >= max {
				continue // nothing to remove (y-protocols clients see no change either), or full
			}
			if len(a.states) >= 2*max {
				a.dropTombstone() // clients churning through IDs must not grow the map
			}
			cur = &awState{}
			a.states[e.ClientID] = cur
		}
		switch {
		case remove && cur.state != nil:
			a.live--
			a.bytes -= len(cur.state)
			cur.state = nil
		case !remove && cur.state == nil:
			if a.live >= max {
				continue
			}
			a.live++
		}
		cur.clock, cur.seen, cur.owner = e.Clock, now, owner
		if !remove {
			a.bytes += len(e.State) - len(cur.state)
			cur.state = append(cur.state[:0:0], e.State...)
		}
		accepted = append(accepted, yproto.AwarenessEntry{ClientID: e.ClientID, Clock: e.Clock, State: e.State})
	}
	return accepted
}

// newer reports whether e changes cur (nil: unknown) by the rule of y-protocols clients: a higher
// clock, or a removal with the clock of a live state.
// An unknown ID counts as clock 0, as in y-protocols, so its clock-0 state is not taken.
func (a *awareness) newer(cur *awState, e yproto.AwarenessEntry) bool {
	if cur == nil {
		return e.Clock > 0
	}
	return cur.clock < e.Clock || (cur.clock == e.Clock && isNull(e.State) && cur.state != nil)
}

// claims returns the distinct IDs of entries by which owner would become the publisher of a
// state: non-null entries that apply returns as changes, for IDs whose live state owner does not
// publish already (the ID is new, removed, or published by another connection or process). An
// entry that repeats what the room has — the relay every stock client sends of each state it
// applied — is no claim.
func (a *awareness) claims(entries []yproto.AwarenessEntry, owner *consumer) []uint64 {
	var ids []uint64
	for _, e := range entries {
		if isNull(e.State) || slices.Contains(ids, e.ClientID) {
			continue
		}
		cur := a.states[e.ClientID]
		if !a.newer(cur, e) || (cur != nil && cur.state != nil && cur.owner == owner) {
			continue
		}
		ids = append(ids, e.ClientID)
	}
	return ids
}

// clock returns the clock the room holds for id, live or removed.
func (a *awareness) clock(id uint64) (uint64, bool) {
	if s := a.states[id]; s != nil {
		return s.clock, true
	}
	return 0, false
}

// fits reports whether state may replace cur's state (cur may be nil) within the size bounds.
func (a *awareness) fits(cur *awState, state []byte) bool {
	if a.maxState > 0 && len(state) > a.maxState {
		return false
	}
	old := 0
	if cur != nil {
		old = len(cur.state)
	}
	return a.maxTotal <= 0 || a.bytes-old+len(state) <= a.maxTotal
}

// dropTombstone forgets one removed state (any one: losing a tombstone only lets a delayed, older
// update show a state again until it times out).
func (a *awareness) dropTombstone() {
	for id, s := range a.states {
		if s.state == nil {
			delete(a.states, id)
			return
		}
	}
}

// remove ends the states of ids that owner still publishes and returns the removals: a null state
// with the state's own clock, which y-protocols takes as a removal (it is how its clients remove
// a peer they consider gone). The clock is not advanced: a peer keeps the clock of a removed
// state, and a clock the client itself never reached would make the peer ignore the client's
// next renewal when it comes back.
func (a *awareness) remove(ids []uint64, owner *consumer, now time.Time) []yproto.AwarenessEntry {
	var out []yproto.AwarenessEntry
	for _, id := range ids {
		cur := a.states[id]
		if cur == nil || cur.state == nil || cur.owner != owner {
			continue
		}
		a.bytes -= len(cur.state)
		cur.state, cur.owner, cur.seen = nil, nil, now
		a.live--
		out = append(out, yproto.AwarenessEntry{ClientID: id, Clock: cur.clock, State: nullState})
	}
	return out
}

// all returns every live state.
func (a *awareness) all() []yproto.AwarenessEntry {
	out := make([]yproto.AwarenessEntry, 0, a.live)
	for id, s := range a.states {
		if s.state != nil {
			out = append(out, yproto.AwarenessEntry{ClientID: id, Clock: s.clock, State: s.state})
		}
	}
	return out
}

// expire forgets live states not renewed within timeout (clients drop them likewise) and
// tombstones older than twice that.
func (a *awareness) expire(now time.Time, timeout time.Duration) {
	for id, s := range a.states {
		age := now.Sub(s.seen)
		switch {
		case s.state != nil && age > timeout:
			a.bytes -= len(s.state)
			s.state, s.owner, s.seen = nil, nil, now
			a.live--
		case s.state == nil && age > 2*timeout:
			delete(a.states, id)
		}
	}
}
