package redislayer

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/rueidis"
)

// One keeper goroutine per shard watches that shard and keeps this process's memberships in it:
//
//   - It probes the shard every keeperTick with one EXPIRE of this process's marker key
//     ("<Prefix>:ginws:alive:<client>", written by the keeper, TTL markerTTL). EXPIRE answers 0 when
//     the key is gone: Redis lost this process's data (a restart without persistence, a failover
//     to a replica that never had it, a flush) even if no connection broke.
//   - A shard is degraded from the first sign of trouble — a failed probe, a receive loop's failed
//     round trip, the marker gone — until the keeper has probed it again and re-added every live
//     membership of this process there (a resync). After a data loss it stays degraded for
//     recoveryGrace more, so that the other processes sharing the shard have re-added theirs
//     before this one's group sends resume: they detect the same fault within
//     degradedProbeMax (their receive loops see their connections break at once).
//   - While a shard is degraded, GroupSend to its groups fails with ErrDegraded (instead of
//     reaching a partial member list in silence); the receive loops wait for the resync before
//     they pop again; Health reports it.
//   - Every refreshEvery it rewrites the memberships last written more than GroupExpiry/2 ago,
//     so that a live connection never leaves its groups by expiry, while a dead process's
//     memberships still expire GroupExpiry after their last write, as in Channels.

// ErrDegraded is returned (wrapped) by GroupSend while the group's shard is degraded, and by
// Health: Redis is unreachable, or this process is re-adding its memberships after a fault. A
// message refused with it was not sent.
var ErrDegraded = errors.New("redislayer: Redis degraded")

const (
	keeperTick       = time.Second            // probe period of a healthy shard (shorter for a short GroupExpiry)
	degradedProbeMin = 50 * time.Millisecond  // first re-probe of a degraded shard
	degradedProbeMax = 250 * time.Millisecond // re-probes of a degraded shard, at most this far apart
	recoveryGrace    = time.Second            // after Redis lost data: how long group sends still wait for other processes
	markerTTL        = 60                     // seconds; the keeper renews it every keeperTick
	resyncBatch      = 512                    // commands per pipelined round trip when re-adding
)

// shardState is the health of one shard. Guarded by mu; downFlag mirrors down for GroupSend.
type shardState struct {
	index    int
	host     string // redacted, for logs
	nudge    chan struct{}
	downFlag atomic.Bool

	mu     sync.Mutex
	down   bool          // degraded: GroupSend fails
	since  time.Time     // when the degradation started
	cause  error         // what started it
	lost   bool          // this degradation lost this process's data in Redis
	synced chan struct{} // closed while this process's memberships are in place
	// restored is when the memberships were last put back in place. A call that began before it
	// and failed later (it was stuck in the outage and timed out after Redis came back) is no
	// news: it does not degrade the shard again.
	restored time.Time
	graceTo  time.Time // after a data loss: degraded until then, though synced
	marked   bool      // the marker key was written (so its absence means data loss)
	flushes  int       // Flush calls under way: the marker's absence is no data loss
}

// flushing counts a Flush in (+1) or out (-1). The marker a Flush deletes is written again.
func (s *shardState) flushing(d int) {
	s.mu.Lock()
	s.flushes += d
	s.marked = false
	s.mu.Unlock()
}

func newShardState(i int, host string) *shardState {
	s := &shardState{index: i, host: host, nudge: make(chan struct{}, 1), synced: make(chan struct{})}
	close(s.synced)
	return s
}

func isClosed(ch chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// syncedCh returns a channel closed once the shard's memberships are in place.
func (s *shardState) syncedCh() chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.synced
}

// poke asks the keeper to probe now.
func (s *shardState) poke() {
	select {
	case s.nudge <- struct{}{}:
	default:
	}
}

// degrade marks shard i degraded because of err (a no-op for the start time when it already is),
// and wakes its keeper. It is called by the keeper's probe and by the receive loops, with the time
// the failed call began; a failure of a call older than the last restoration is ignored.
func (l *Layer) degrade(i int, err error, lost bool, callStart time.Time) {
	s := l.health[i]
	s.mu.Lock()
	if !lost && callStart.Before(s.restored) {
		s.mu.Unlock()
		s.poke() // probe anyway: if Redis failed again, the probe says so
		return
	}
	start := !s.down
	if start {
		s.down, s.since = true, time.Now()
		s.downFlag.Store(true)
	}
	s.cause = err
	s.lost = s.lost || lost
	if isClosed(s.synced) { // memberships may be gone again: the loops wait for the next resync
		s.synced = make(chan struct{})
	}
	s.graceTo = time.Time{}
	s.mu.Unlock()
	if start && l.ctx.Err() == nil {
		l.st.degradations.Add(1)
		l.log.Error("redislayer: Redis degraded: group sends fail and deliveries wait until this process's memberships are restored",
			"shard", i, "host", s.host, "err", err)
	}
	s.poke()
}

// keep is the keeper of shard i; it runs until Close.
func (l *Layer) keep(i int) {
	defer l.wg.Done()
	s := l.health[i]
	tick := min(keeperTick, l.cfg.GroupExpiry/4)
	refreshEvery := l.cfg.GroupExpiry / 4
	nextRefresh := time.Now().Add(refreshEvery)
	beatEvery := l.cfg.PresenceTTL / 8
	nextBeat := time.Now().Add(beatEvery)
	var backoff time.Duration
	timer := time.NewTimer(0) // probe at once
	defer timer.Stop()
	for {
		select {
		case <-l.ctx.Done():
			return
		case <-timer.C:
		case <-s.nudge:
			if backoff > 0 {
				continue // a degraded shard is re-probed on its own schedule
			}
			if !timer.Stop() {
				select {
				case <-timer.C:
				default:
				}
			}
		}
		wait := tick
		if err := l.check(i); err != nil {
			backoff = min(max(2*backoff, degradedProbeMin), degradedProbeMax)
			wait = backoff
		} else {
			backoff = 0
			if d := l.graceLeft(i); d > 0 {
				wait = min(wait, d)
			}
			if now := time.Now(); !now.Before(nextRefresh) {
				nextRefresh = now.Add(refreshEvery)
				if err := l.rewrite(i, false); err != nil && l.ctx.Err() == nil {
					l.log.Warn("redislayer: refreshing memberships failed; retrying", "shard", i, "err", err)
					nextRefresh = now.Add(tick)
				}
			}
			if now := time.Now(); !now.Before(nextBeat) {
				nextBeat = now.Add(beatEvery)
				l.beat(i, true)
			}
			wait = min(wait, max(time.Until(nextBeat), 0))
		}
		timer.Reset(wait)
	}
}

// check probes shard i and, when it is degraded or lost this process's data, re-adds the
// memberships. It returns an error while the shard stays unreachable.
func (l *Layer) check(i int) error {
	s := l.health[i]
	c := l.shards[i]
	callStart := time.Now()
	ctx, cancel := context.WithTimeout(l.ctx, l.cfg.CallTimeout)
	defer cancel()
	n, err := c.Do(ctx, c.B().Expire().Key(l.markerKey()).Seconds(markerTTL).Build()).AsInt64()
	if err != nil {
		if l.ctx.Err() == nil {
			l.degrade(i, err, false, callStart)
		}
		return err
	}
	s.mu.Lock()
	marked, needSync := s.marked && s.flushes == 0, !isClosed(s.synced)
	s.mu.Unlock()
	if n == 0 && marked {
		l.degrade(i, errors.New("Redis lost this process's data (restart without persistence, failover, or flush)"), true, callStart)
		needSync = true
	}
	if !needSync {
		if !marked { // first contact
			if err := c.Do(ctx, l.setMarker(c)).Error(); err == nil {
				s.mu.Lock()
				s.marked = true
				s.mu.Unlock()
			}
		}
		l.endGrace(i)
		return nil
	}
	start := time.Now()
	readded, err := l.resync(ctx, i)
	if err != nil {
		if l.ctx.Err() == nil {
			l.degrade(i, err, false, start)
		}
		return err
	}
	l.st.readded.Add(uint64(readded))
	l.beat(i, false) // presence too: put back what Redis lost, now
	s.mu.Lock()
	s.marked = true
	lost := s.lost
	if lost {
		s.graceTo = time.Now().Add(recoveryGrace)
	}
	close(s.synced)
	s.restored = time.Now()
	s.mu.Unlock()
	l.log.Info("redislayer: memberships restored", "shard", i, "readded", readded,
		"took", time.Since(start).Round(time.Millisecond), "data_lost", lost)
	l.endGrace(i)
	return nil
}

// beat refreshes this process's presence on shard i (presence.go), bounded by CallTimeout;
// rejoin: see refreshPresence.
func (l *Layer) beat(i int, rejoin bool) {
	ctx, cancel := context.WithTimeout(l.ctx, l.cfg.CallTimeout)
	defer cancel()
	n, err := l.refreshPresence(ctx, i, rejoin)
	l.st.presenceReadded.Add(uint64(n))
	if err != nil && l.ctx.Err() == nil {
		l.log.Warn("redislayer: refreshing presence failed; retrying", "shard", i, "err", err)
	}
}

// graceLeft is how long shard i stays degraded after its resync.
func (l *Layer) graceLeft(i int) time.Duration {
	s := l.health[i]
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.down || s.graceTo.IsZero() {
		return 0
	}
	return time.Until(s.graceTo)
}

// endGrace ends the degradation of a synced shard once its grace (if any) is over, and logs how
// long it lasted.
func (l *Layer) endGrace(i int) {
	s := l.health[i]
	s.mu.Lock()
	if !s.down || !isClosed(s.synced) || time.Now().Before(s.graceTo) {
		s.mu.Unlock()
		return
	}
	since := s.since
	s.down, s.graceTo, s.since, s.cause, s.lost = false, time.Time{}, time.Time{}, nil, false
	s.downFlag.Store(false)
	s.mu.Unlock()
	d := time.Since(since)
	l.st.degradedNanos.Add(uint64(d))
	l.log.Error("redislayer: Redis degradation ended", "shard", i, "host", s.host, "lasted", d.Round(time.Millisecond))
}

// resync re-adds every live membership of this process on shard i, then writes the marker. It
// returns how many memberships it wrote.
func (l *Layer) resync(ctx context.Context, i int) (int, error) {
	ms := l.collect(i, true)
	c := l.shards[i]
	if err := l.writeMembers(ctx, c, ms); err != nil {
		return 0, err
	}
	if err := c.Do(ctx, l.setMarker(c)).Error(); err != nil {
		return 0, err
	}
	return len(ms), l.removeStale(ctx, c, ms)
}

// rewrite refreshes the memberships of shard i that are due (all of them when all is set).
func (l *Layer) rewrite(i int, all bool) error {
	ms := l.collect(i, all)
	if len(ms) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(l.ctx, l.cfg.CallTimeout)
	defer cancel()
	c := l.shards[i]
	if err := l.writeMembers(ctx, c, ms); err != nil {
		return err
	}
	l.st.refreshed.Add(uint64(len(ms)))
	return l.removeStale(ctx, c, ms)
}

// collect lists the memberships of shard i to write: every live one, or those due for a refresh.
func (l *Layer) collect(i int, all bool) []member {
	now := time.Now()
	onShard := func(g string) bool { return len(l.shards) == 1 || consistentHash(g, len(l.shards)) == i }
	l.mu.RLock()
	defer l.mu.RUnlock()
	subscribed := func(ch string) bool {
		if l.subs[ch] != nil {
			return true
		}
		b := l.bufs[ch]
		return b != nil && b.waiters > 0 // a Receive is waiting on it now
	}
	return l.members.collect(now, now.Add(-l.cfg.GroupExpiry/2), all, l.cfg.GroupExpiry, onShard, subscribed)
}

// writeMembers writes ms with their scores — one ZADD per group with all its members, and EXPIRE
// GroupExpiry — in pipelined round trips of at most resyncBatch commands.
func (l *Layer) writeMembers(ctx context.Context, c rueidis.Client, ms []member) error {
	if len(ms) == 0 {
		return nil
	}
	byGroup := make(map[string][]member)
	var order []string
	for _, m := range ms {
		if byGroup[m.group] == nil {
			order = append(order, m.group)
		}
		byGroup[m.group] = append(byGroup[m.group], m)
	}
	cmds := make(rueidis.Commands, 0, min(2*len(order), resyncBatch))
	flush := func() error {
		for _, r := range c.DoMulti(ctx, cmds...) {
			if err := r.Error(); err != nil {
				return err
			}
		}
		cmds = cmds[:0]
		return nil
	}
	for _, g := range order {
		key := l.groupKey(g)
		for part := byGroup[g]; len(part) > 0; {
			n := min(len(part), 1000)
			z := c.B().Zadd().Key(key).ScoreMember()
			for _, m := range part[:n] {
				z = z.ScoreMember(scoreFloat(m.score), m.channel)
			}
			part = part[n:]
			cmds = append(cmds, z.Build())
		}
		cmds = append(cmds, c.B().Expire().Key(key).Seconds(l.groupSec).Build())
		if len(cmds) >= resyncBatch {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	if len(cmds) > 0 {
		return flush()
	}
	return nil
}

// removeStale removes again the written memberships that were forgotten while they were being
// written, and records the scores of the others.
func (l *Layer) removeStale(ctx context.Context, c rueidis.Client, ms []member) error {
	stale := l.members.written(ms)
	if len(stale) == 0 {
		return nil
	}
	cmds := make(rueidis.Commands, 0, len(stale))
	for _, m := range stale {
		cmds = append(cmds, c.B().Zrem().Key(l.groupKey(m.group)).Member(m.channel).Build())
	}
	for _, r := range c.DoMulti(ctx, cmds...) {
		if err := r.Error(); err != nil {
			return err
		}
	}
	return nil
}

// markerKey is this process's marker, present while Redis still holds what this process wrote.
// Channel and group names cannot contain ':', so it collides with no channels_redis key.
func (l *Layer) markerKey() string { return l.cfg.Prefix + ":ginws:alive:" + l.clientPrefix }

func (l *Layer) setMarker(c rueidis.Client) rueidis.Completed {
	return c.B().Set().Key(l.markerKey()).Value(strconv.FormatInt(time.Now().Unix(), 10)).ExSeconds(markerTTL).Build()
}

// groupShardDown returns ErrDegraded, wrapped with the shard and since when, when the shard that
// holds group is degraded.
func (l *Layer) groupShardDown(group string) error {
	i := 0
	if len(l.shards) > 1 {
		i = consistentHash(group, len(l.shards))
	}
	s := l.health[i]
	if !s.downFlag.Load() {
		return nil
	}
	return s.err()
}

// err describes the degradation of s, or returns nil when it is over.
func (s *shardState) err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.down {
		return nil
	}
	what := "restoring this process's memberships"
	if isClosed(s.synced) {
		what = "Redis lost its data; giving the other processes time to restore their memberships"
	} else if s.cause != nil {
		what = s.cause.Error()
	}
	return fmt.Errorf("%w: shard %d (%s) for %v: %s", ErrDegraded, s.index, s.host, time.Since(s.since).Round(time.Millisecond), what)
}

// Health reports whether the layer can deliver now, for an app's readiness check (/readyz). It
// returns nil when the layer is open, no shard is degraded, and every shard answers a PING before
// ctx ends (bounded by CallTimeout when ctx has no deadline). Otherwise it returns
// layer.ErrClosed, an error wrapping ErrDegraded that names the shard and how long it has been
// degraded, or the PING's error. A failed PING also makes the keeper probe the shard at once. It
// changes nothing else and is safe to call often: one PING per shard, pipelined with the layer's
// other commands.
//
// A degraded shard means: Redis is unreachable, or answers again but this process has not yet
// re-added its memberships there, or (after Redis lost its data) the recovery grace has not yet
// passed. While Health fails, group sends to that shard's groups fail with ErrDegraded and
// messages for this process wait in Redis.
func (l *Layer) Health(ctx context.Context) error {
	ctx, cancel, err := l.call(ctx)
	if err != nil {
		return err
	}
	defer cancel()
	for _, s := range l.health {
		if err := s.err(); err != nil {
			return err
		}
	}
	for i, c := range l.shards {
		if err := c.Do(ctx, c.B().Ping().Build()).Error(); err != nil {
			l.health[i].poke()
			return l.callError(fmt.Sprintf("ping shard %d", i), err)
		}
	}
	return nil
}

// poke asks the keeper of group's shard to probe it now: a call on it failed.
func (l *Layer) poke(group string) {
	i := 0
	if len(l.shards) > 1 {
		i = consistentHash(group, len(l.shards))
	}
	l.health[i].poke()
}
