package redislayer

import "time"

// maxGone bounds how many unsubscribed channels a Layer remembers (about 150 bytes each). Beyond
// it the oldest are forgotten early: their late group messages are buffered (bounded by Capacity
// and Expiry) instead of discarded. A variable so that tests can lower it.
var maxGone = 100_000

// goneSet remembers channels whose subscriber left, for GroupExpiry — as long as a group can still
// hold them after a failed GroupDiscard — so that their late messages are discarded instead of
// buffered for a Receive that never comes. Entries are queued in the order added, so expiry and
// the size bound cost O(1) amortised per add, whether or not messages arrive. Guarded by Layer.mu.
type goneSet struct {
	at    map[string]time.Time
	queue []goneEntry // in order added; entries whose time no longer matches at are stale
}

type goneEntry struct {
	name string
	at   time.Time
}

func (g *goneSet) len() int { return len(g.at) }

func (g *goneSet) has(name string) bool {
	_, ok := g.at[name]
	return ok
}

func (g *goneSet) remove(name string) { delete(g.at, name) }

// add remembers name as unsubscribed at now, first forgetting entries older than ttl and the
// oldest beyond maxGone.
func (g *goneSet) add(name string, now time.Time, ttl time.Duration) {
	g.expire(now, ttl)
	for len(g.queue) >= maxGone {
		g.pop()
	}
	g.at[name] = now
	g.queue = append(g.queue, goneEntry{name, now})
}

// expire forgets the entries older than ttl.
func (g *goneSet) expire(now time.Time, ttl time.Duration) {
	for len(g.queue) > 0 && now.Sub(g.queue[0].at) > ttl {
		g.pop()
	}
	if len(g.queue) == 0 && cap(g.queue) > 1024 {
		g.queue = nil // let a burst's backing array go
	}
}

func (g *goneSet) pop() {
	e := g.queue[0]
	g.queue[0] = goneEntry{}
	g.queue = g.queue[1:]
	if at, ok := g.at[e.name]; ok && at.Equal(e.at) {
		delete(g.at, e.name)
	}
}
