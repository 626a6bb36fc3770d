package redislayer

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"sync"
	"time"

	"ginws.dev/ginws/layer"
)

// Joining a group from a position (layer.Resumer). joinScript adds the membership and reads the
// history after the position atomically: every message of the group with an offset up to the one
// it returns is in its reply, every later one is written to the channel's process key after it.
// The receive loop may pop such a later message before the reply is delivered, so while the
// join is under way the loop holds the channel's messages of that group (a hold), and the join
// delivers the reply first, then what was held. Each message is then delivered once: a held
// message with an offset the reply covered is a duplicate and is dropped (that only happens when
// the channel was a member already).
//
// A Django process sending to the group writes members without a position: they are delivered
// live, are not held, and are not in the history.

// hold gathers the live messages of one group for one channel while the channel joins the group
// from a position.
type hold struct {
	group string // immutable
	mu    sync.Mutex
	held  []*layer.Envelope // guarded by mu
}

// newEpoch returns a random epoch for a group whose history Redis does not hold: 12 letters and
// digits, as layer.ParsePosition accepts.
func newEpoch() string {
	const digits = "abcdefghijklmnopqrstuvwxyz0123456789"
	var b [12]byte
	for i := range b {
		b[i] = digits[rand.IntN(len(digits))]
	}
	return string(b[:])
}

// histKeys are the keys of group's history: its hash and its stream.
func (l *Layer) histKeys(group string) []string {
	return []string{l.cfg.Prefix + ":hist:" + group, l.cfg.Prefix + ":histlog:" + group}
}

// histArgs are the history arguments of the send scripts: new epoch, size, age in ms, hash expiry.
func (l *Layer) histArgs(rule layer.HistoryRule) []string {
	return []string{newEpoch(), strconv.Itoa(rule.Size), strconv.FormatInt(rule.Age.Milliseconds(), 10), strconv.FormatInt(l.histTTL(rule), 10)}
}

// histTTL is how long a group's epoch and last offset outlive its last send or join, in seconds:
// GroupExpiry, and at least the history's age.
func (l *Layer) histTTL(rule layer.HistoryRule) int64 {
	return max(l.groupSec, seconds(rule.Age))
}

var errResumeForeign = errors.New("redislayer: GroupAddSince needs a process-local channel of this Layer")

// GroupAddSince adds channel, a process-local channel of this Layer, to group and delivers the
// group's messages after since to it first (see layer.Resumer): through its subscriber, or into
// its buffer for Receive. The channel should not be a member of the group already: if it is, a
// message written to it just before the join may also arrive live after the replay.
func (l *Layer) GroupAddSince(ctx context.Context, group, channel string, since layer.Position) (_ layer.Recovery, err error) {
	rule, ok := l.histories.Of(group)
	if !ok {
		return layer.Recovery{Gap: !since.IsZero()}, l.GroupAdd(ctx, group, channel)
	}
	if err := validGroupChannel(group, channel); err != nil {
		return layer.Recovery{}, err
	}
	if !l.tracks(channel) {
		return layer.Recovery{}, fmt.Errorf("%w: %s", errResumeForeign, channel)
	}
	ctx, cancel, err := l.call(ctx)
	if err != nil {
		return layer.Recovery{}, err
	}
	defer cancel()
	now := time.Now()
	defer l.observe(opGroupAdd, now, &err)
	tracked := l.members.add(group, channel, now)
	h := l.startHold(channel, group)
	keys := append([]string{l.groupKey(group)}, l.histKeys(group)...)
	arr, err := joinScript.Exec(ctx, l.shard(group), keys, []string{
		channel, score(now), strconv.FormatInt(l.groupSec, 10), newEpoch(), strconv.FormatInt(l.histTTL(rule), 10),
		since.Epoch, strconv.FormatUint(since.Offset, 10), strconv.FormatInt(rule.Age.Milliseconds(), 10),
	}).AsStrSlice()
	if err == nil && (len(arr) < 3 || len(arr)%2 == 0) {
		err = fmt.Errorf("redislayer: join script replied with %d elements", len(arr))
	}
	var rec layer.Recovery
	var replay []*layer.Envelope
	if err == nil {
		rec, replay, err = parseJoin(group, arr)
	}
	if since.IsZero() {
		rec.Gap = false
	}
	l.endHold(channel, h, replay, rec.Last, now)
	if err != nil {
		if tracked {
			l.members.forget(group, channel)
		}
		return layer.Recovery{}, l.callError(fmt.Sprintf("add %q to group %q from %v", channel, group, since), err)
	}
	rec.Replayed = len(replay)
	l.st.replayed.Add(uint64(len(replay)))
	return rec, nil
}

// parseJoin reads joinScript's reply.
func parseJoin(group string, arr []string) (layer.Recovery, []*layer.Envelope, error) {
	top, err := strconv.ParseUint(arr[1], 10, 64)
	if err != nil {
		return layer.Recovery{}, nil, fmt.Errorf("redislayer: join script replied offset %q", arr[1])
	}
	rec := layer.Recovery{Last: layer.Position{Epoch: arr[0], Offset: top}, Gap: arr[2] == "1"}
	replay := make([]*layer.Envelope, 0, (len(arr)-3)/2)
	for i := 3; i+1 < len(arr); i += 2 {
		off, err := strconv.ParseUint(arr[i], 10, 64)
		if err != nil {
			return layer.Recovery{}, nil, fmt.Errorf("redislayer: join script replied offset %q", arr[i])
		}
		d, err := decodeMember(arr[i+1])
		if err != nil {
			rec.Gap = true // a message the history cannot give back is missing
			continue
		}
		env := layer.NewEnvelope(d.msg, group)
		env.Position = layer.Position{Epoch: rec.Last.Epoch, Offset: off}
		replay = append(replay, env)
	}
	return rec, replay, nil
}

// startHold makes the receive loops hold channel's messages of group until endHold.
func (l *Layer) startHold(channel, group string) *hold {
	h := &hold{group: group}
	l.mu.Lock()
	if l.holds == nil {
		l.holds = make(map[string][]*hold)
	}
	l.holds[channel] = append(l.holds[channel], h)
	l.holding.Add(1)
	l.mu.Unlock()
	return h
}

// endHold delivers replay to channel, then what h held, minus the messages replay covered (up to
// last), and ends the hold.
func (l *Layer) endHold(channel string, h *hold, replay []*layer.Envelope, last layer.Position, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	hs := l.holds[channel]
	if i := slices.Index(hs, h); i >= 0 {
		hs = slices.Delete(hs, i, i+1)
	}
	if len(hs) == 0 {
		delete(l.holds, channel)
	} else {
		l.holds[channel] = hs
	}
	l.holding.Add(-1)
	h.mu.Lock()
	held := h.held
	h.held = nil
	h.mu.Unlock()
	expires := now.Add(l.cfg.Expiry)
	for _, env := range replay {
		l.buffer(channel, env, now, expires)
	}
	for _, env := range held {
		if p := env.Position; p.Epoch == last.Epoch && p.Offset <= last.Offset {
			continue // a live copy of a replayed message
		}
		l.buffer(channel, env, now, expires)
	}
}

// held reports whether env, a message for channel, is held by a join under way (and keeps it).
// Callers hold l.mu, for reading at least, and have checked l.holding.
func (l *Layer) held(channel string, env *layer.Envelope) bool {
	if env.Group() == "" {
		return false
	}
	for _, h := range l.holds[channel] {
		if h.group == env.Group() {
			h.mu.Lock()
			h.held = append(h.held, env)
			h.mu.Unlock()
			return true
		}
	}
	return false
}
