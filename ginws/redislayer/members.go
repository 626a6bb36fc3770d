package redislayer

import (
	"sync"
	"time"
)

// The process is the source of truth for its own memberships. Redis holds a copy (channels_redis'
// group sorted sets, which Django processes read too); this table holds what this Layer's live
// process-local channels joined, so that the keeper (keeper.go) can write them again when Redis
// lost them (a restart without persistence, a failover to a replica that had not caught up, a
// flush) and rewrite them before GroupExpiry while their channel lives.
//
// Only process-local channels made by this Layer are tracked: their liveness is known here (a
// subscriber, or Receive calls). A normal channel ("thumbnails") is received by whichever process
// pops it and may be discarded from its groups by any process, Go or Django; no single process
// can tell whether its membership should live on, so it lives in Redis only, with Channels'
// expiry, as in channels_redis.

// memberships is the table of this Layer's tracked memberships. Guarded by its own mutex; a caller
// holding Layer.mu may take it (lock order: Layer.mu, then memberships.mu), never the reverse.
type memberships struct {
	mu    sync.Mutex
	chans map[string]*chanGroups // channel → its groups
	n     int                    // memberships in chans
}

type chanGroups struct {
	groups map[string]time.Time // group → the score (join time) last written to Redis
	active time.Time            // last GroupAdd or Receive on the channel
}

// member is one membership as the keeper writes it.
type member struct {
	group, channel string
	score          time.Time
}

func newMemberships() memberships {
	return memberships{chans: make(map[string]*chanGroups)}
}

// add records channel in group as written at now. It reports whether the membership is new, so
// that a GroupAdd that fails can take back what it alone recorded.
func (m *memberships) add(group, channel string, now time.Time) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	cg := m.chans[channel]
	if cg == nil {
		cg = &chanGroups{groups: make(map[string]time.Time, 1)}
		m.chans[channel] = cg
	}
	cg.active = now
	_, had := cg.groups[group]
	if !had {
		m.n++
	}
	cg.groups[group] = now
	return !had
}

// forget removes channel from group; it reports whether it was tracked.
func (m *memberships) forget(group, channel string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	cg := m.chans[channel]
	if cg == nil {
		return false
	}
	if _, ok := cg.groups[group]; !ok {
		return false
	}
	delete(cg.groups, group)
	m.n--
	if len(cg.groups) == 0 {
		delete(m.chans, channel)
	}
	return true
}

// has reports whether channel is tracked in group.
func (m *memberships) has(group, channel string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	cg := m.chans[channel]
	if cg == nil {
		return false
	}
	_, ok := cg.groups[group]
	return ok
}

// touch marks a tracked channel as active (a Receive on it). Untracked channels cost one lookup.
func (m *memberships) touch(channel string, now time.Time) {
	m.mu.Lock()
	if cg := m.chans[channel]; cg != nil {
		cg.active = now
	}
	m.mu.Unlock()
}

// dropChannel forgets every membership of channel: its subscriber left, so the process no longer
// vouches for it. What Redis still holds expires as in Channels (and messages that reach it are
// discarded, see goneSet).
func (m *memberships) dropChannel(channel string) {
	m.mu.Lock()
	if cg := m.chans[channel]; cg != nil {
		m.n -= len(cg.groups)
		delete(m.chans, channel)
	}
	m.mu.Unlock()
}

// clear forgets everything (Flush).
func (m *memberships) clear() {
	m.mu.Lock()
	clear(m.chans)
	m.n = 0
	m.mu.Unlock()
}

func (m *memberships) len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.n
}

// collect returns the memberships to write on one shard, and forgets those of dead channels.
//
//   - all: every membership of a live channel (a resync after Redis lost them); otherwise only
//     those last written before due (a refresh).
//   - A channel is live while subscribed(channel) holds (a ginws connection), or while it was
//     active (GroupAdd, Receive) within ttl. A subscribed channel's score is now; another live
//     channel's is its last activity, so that it expires ttl after that, as in Channels. A
//     channel that is not live is forgotten.
//
// onShard selects the groups of the shard. Callers may hold Layer.mu (for subscribed).
func (m *memberships) collect(now, due time.Time, all bool, ttl time.Duration, onShard func(group string) bool, subscribed func(channel string) bool) []member {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []member
	for ch, cg := range m.chans {
		score := now
		if !subscribed(ch) {
			if now.Sub(cg.active) >= ttl {
				m.n -= len(cg.groups)
				delete(m.chans, ch)
				continue
			}
			score = cg.active
		}
		for g, at := range cg.groups {
			if !onShard(g) || (!all && (!at.Before(due) || !score.After(at))) {
				continue
			}
			out = append(out, member{group: g, channel: ch, score: score})
		}
	}
	return out
}

// written records that ms were written to Redis with their scores, and returns those forgotten
// meanwhile (GroupDiscard, a subscriber that left, Flush), which the writer must remove again: a
// GroupDiscard whose ZREM ran before the write would otherwise be undone.
func (m *memberships) written(ms []member) (stale []member) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, w := range ms {
		cg := m.chans[w.channel]
		if cg == nil {
			stale = append(stale, w)
			continue
		}
		at, ok := cg.groups[w.group]
		if !ok {
			stale = append(stale, w)
			continue
		}
		if w.score.After(at) {
			cg.groups[w.group] = w.score
		}
	}
	return stale
}
