package redislayer

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/rueidis"

	"ginws.dev/ginws/layer"
)

// Presence (layer.Presence) on Redis. The process is the source of truth for its own tracked
// connections, as for its memberships (members.go): this table holds them, and the keeper
// (keeper.go) refreshes them every PresenceTTL/8 — which also sweeps the group's dead entries and
// puts back what Redis lost (a restart without persistence, a failover, a flush). In Redis a
// connection lives PresenceTTL/2 past its last refresh (so a live process may be late by three
// refreshes before its users are taken for gone), and a process sweeps its groups at each
// refresh, so a killed process's users leave (and the leave is announced) at most about 5/8 of
// PresenceTTL after it died. The Redis layout and the scripts are in presence_scripts.go.

// presenceTable is this Layer's tracked connections. Guarded by its own mutex, which is never held
// during a Redis call; a caller holding Layer.mu may take it, never the reverse.
type presenceTable struct {
	mu     sync.Mutex
	groups map[string]map[string]*tracked // group → channel → what it tracked
}

// tracked is one tracked connection: its user and its encoded value ({"u":..., "i":...}).
// pending is set while its PresenceAdd waits to be applied (presence_batch.go): the refresh leaves
// it to that call, which announces the join.
type tracked struct {
	user, value string
	pending     atomic.Bool
}

func newPresenceTable() presenceTable {
	return presenceTable{groups: make(map[string]map[string]*tracked)}
}

// put records channel in group; it returns the previous record (nil when new).
func (p *presenceTable) put(group, channel string, t *tracked) (old *tracked) {
	p.mu.Lock()
	defer p.mu.Unlock()
	g := p.groups[group]
	if g == nil {
		g = make(map[string]*tracked)
		p.groups[group] = g
	}
	old = g[channel]
	g[channel] = t
	return old
}

// remove forgets channel in group if it is still the record t (any record when t is nil).
func (p *presenceTable) remove(group, channel string, t *tracked) {
	p.mu.Lock()
	defer p.mu.Unlock()
	g := p.groups[group]
	if cur := g[channel]; cur == nil || (t != nil && cur != t) {
		return
	}
	delete(g, channel)
	if len(g) == 0 {
		delete(p.groups, group)
	}
}

// get returns channel's record in group, or nil.
func (p *presenceTable) get(group, channel string) *tracked {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.groups[group][channel]
}

// shardGroups returns the groups of shard (onShard) with the channels tracked there.
func (p *presenceTable) shardGroups(onShard func(string) bool) map[string][]string {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make(map[string][]string)
	for g, chans := range p.groups {
		if !onShard(g) {
			continue
		}
		list := make([]string, 0, len(chans))
		for ch, t := range chans {
			if !t.pending.Load() {
				list = append(list, ch)
			}
		}
		if len(list) > 0 {
			out[g] = list
		}
	}
	return out
}

func (p *presenceTable) clear() {
	p.mu.Lock()
	clear(p.groups)
	p.mu.Unlock()
}

func (p *presenceTable) len() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, g := range p.groups {
		n += len(g)
	}
	return n
}

// presenceKeys returns the z, h and u keys of group.
func (l *Layer) presenceKeys(group string) []string {
	base := l.cfg.Prefix + ":ginws:p"
	return []string{base + "z:" + group, base + "h:" + group, base + "u:" + group}
}

// presence lifetimes, in ms: a connection's past its last refresh, the keys' past their last write.
func (l *Layer) entryMS() string {
	return strconv.FormatInt(max(l.cfg.PresenceTTL/2, time.Millisecond).Milliseconds(), 10)
}
func (l *Layer) keysMS() string { return strconv.FormatInt(l.cfg.PresenceTTL.Milliseconds(), 10) }

// PresenceAdd tracks channel in group as a connection of p.User; see layer.Presence. The process
// keeps it in Redis — refreshed, and put back after Redis lost it — until PresenceDiscard or the
// process's end; after that it is gone within PresenceTTL.
func (l *Layer) PresenceAdd(ctx context.Context, group, channel string, p layer.PresenceInfo) error {
	if err := validPresence(group, channel); err != nil {
		return err
	}
	if p.User == "" {
		return layer.ErrNoUser
	}
	v, err := json.Marshal(struct {
		U string         `json:"u"`
		I map[string]any `json:"i,omitempty"`
	}{p.User, p.Info})
	if err != nil {
		return fmt.Errorf("redislayer: presence info: %w", err)
	}
	if err := l.checkCall(ctx); err != nil {
		return err
	}
	t := &tracked{user: p.User, value: string(v)}
	t.pending.Store(true)
	old := l.presence.put(group, channel, t) // before the write: a refresh meanwhile renews old
	if err := l.presenceDo(ctx, &presenceOp{group: group, channel: channel, t: t}); err != nil {
		if old == nil {
			l.presence.remove(group, channel, t)
		}
		return l.callError(fmt.Sprintf("track %q in group %q", channel, group), err)
	}
	return nil
}

// checkCall refuses a call on a closed Layer or with a context already done.
func (l *Layer) checkCall(ctx context.Context) error {
	if l.closed.Load() {
		return layer.ErrClosed
	}
	return ctx.Err()
}

// presenceTrack writes the tracked connections of group and announces the changes (the joins
// only when joins is set).
func (l *Layer) presenceTrack(ctx context.Context, group string, conns map[string]*tracked, joins bool) error {
	c := l.shard(group)
	args := make([]string, 0, 2+3*len(conns))
	args = append(args, l.entryMS(), l.keysMS())
	for ch, t := range conns {
		args = append(args, ch, t.user, t.value)
	}
	res, err := presenceTrackScript.Exec(ctx, c, l.presenceKeys(group), args).ToArray()
	if err != nil {
		return err
	}
	if len(res) != 2 {
		return fmt.Errorf("presence script answered %d values", len(res))
	}
	joined, _ := res[0].AsStrSlice()
	left, _ := res[1].AsStrSlice()
	var evs []presenceEvent
	for _, u := range left {
		evs = append(evs, presenceEvent{group: group, user: u})
	}
	for _, u := range joined {
		if !joins {
			break
		}
		var info map[string]any
		for _, t := range conns {
			if t.user == u {
				info = decodeInfo(t.value)
				break
			}
		}
		evs = append(evs, presenceEvent{group: group, user: u, join: true, info: info})
	}
	l.announce(evs)
	return nil
}

// PresenceDiscard stops tracking channel in group; see layer.Presence. The process forgets it
// also when the write fails, so it never refreshes it again: what Redis still holds is gone
// within PresenceTTL, and its departure announced then.
func (l *Layer) PresenceDiscard(ctx context.Context, group, channel string) error {
	if err := validPresence(group, channel); err != nil {
		return err
	}
	l.presence.remove(group, channel, nil)
	if err := l.checkCall(ctx); err != nil {
		return err
	}
	if err := l.presenceDo(ctx, &presenceOp{group: group, channel: channel}); err != nil {
		return l.callError(fmt.Sprintf("untrack %q in group %q", channel, group), err)
	}
	return nil
}

// PresenceList returns the users present in group, sorted; see layer.Presence. It is one round
// trip, which also removes (and announces) the connections of dead processes.
func (l *Layer) PresenceList(ctx context.Context, group string) ([]layer.PresenceEntry, error) {
	if err := layer.ValidatePresenceGroup(group); err != nil {
		return nil, err
	}
	ctx, cancel, err := l.call(ctx)
	if err != nil {
		return nil, err
	}
	defer cancel()
	res, err := presenceListScript.Exec(ctx, l.shard(group), l.presenceKeys(group), nil).ToArray()
	if err == nil && len(res) != 2 {
		err = fmt.Errorf("presence script answered %d values", len(res))
	}
	if err != nil {
		return nil, l.callError(fmt.Sprintf("list presence of group %q", group), err)
	}
	left, _ := res[0].AsStrSlice()
	l.announceLeft(group, left)
	vals, err := res[1].ToArray()
	if err != nil {
		return nil, l.callError(fmt.Sprintf("list presence of group %q", group), err)
	}
	out := make([]layer.PresenceEntry, 0, len(vals))
	idx := make(map[string]int, len(vals))
	for _, m := range vals {
		s, err := m.ToString()
		if err != nil {
			continue
		}
		var d struct {
			U string         `json:"u"`
			I map[string]any `json:"i"`
		}
		if json.Unmarshal([]byte(s), &d) != nil || d.U == "" {
			continue // not written by this package: skip it rather than fail the list
		}
		i, ok := idx[d.U]
		if !ok {
			i = len(out)
			idx[d.U] = i
			out = append(out, layer.PresenceEntry{User: d.U, Info: d.I})
		}
		out[i].Connections++
	}
	slices.SortFunc(out, func(a, b layer.PresenceEntry) int { return strings.Compare(a.User, b.User) })
	return out, nil
}

// PresenceCount returns how many users and connections are present in group; see
// layer.Presence. One round trip, whatever the group's size.
func (l *Layer) PresenceCount(ctx context.Context, group string) (users, connections int, err error) {
	if err := layer.ValidatePresenceGroup(group); err != nil {
		return 0, 0, err
	}
	ctx, cancel, err := l.call(ctx)
	if err != nil {
		return 0, 0, err
	}
	defer cancel()
	res, err := presenceCountScript.Exec(ctx, l.shard(group), l.presenceKeys(group), nil).ToArray()
	if err == nil && len(res) != 3 {
		err = fmt.Errorf("presence script answered %d values", len(res))
	}
	if err != nil {
		return 0, 0, l.callError(fmt.Sprintf("count presence of group %q", group), err)
	}
	left, _ := res[0].AsStrSlice()
	l.announceLeft(group, left)
	u, err1 := res[1].AsInt64()
	n, err2 := res[2].AsInt64()
	if err1 != nil || err2 != nil {
		return 0, 0, fmt.Errorf("redislayer: count presence of group %q: bad answer", group)
	}
	return int(u), int(n), nil
}

// refreshPresence is the keeper's heartbeat for shard i: for every group there in which this
// process tracks connections, it sweeps the dead, renews its own, and tracks again those Redis no
// longer has. It returns how many it tracked again. A user that comes back is announced again
// when rejoin is set — it was swept, and its departure announced, while this process was too slow
// to refresh it — and not after Redis lost the data (no departure was announced then).
func (l *Layer) refreshPresence(ctx context.Context, i int, rejoin bool) (int, error) {
	onShard := func(g string) bool { return len(l.shards) == 1 || consistentHash(g, len(l.shards)) == i }
	groups := l.presence.shardGroups(onShard)
	if len(groups) == 0 {
		return 0, nil
	}
	c := l.shards[i]
	type part struct {
		group string
	}
	var parts []part
	var execs []rueidis.LuaExec
	for g, chans := range groups {
		keys := l.presenceKeys(g)
		for len(chans) > 0 {
			n := min(len(chans), 1000)
			args := append(make([]string, 0, 2+n), l.entryMS(), l.keysMS())
			args = append(args, chans[:n]...)
			chans = chans[n:]
			execs = append(execs, rueidis.LuaExec{Keys: keys, Args: args})
			parts = append(parts, part{g})
		}
	}
	readded := 0
	var firstErr error
	for start := 0; start < len(execs); start += resyncBatch {
		end := min(start+resyncBatch, len(execs))
		for j, r := range presenceRefreshScript.ExecMulti(ctx, c, execs[start:end]...) {
			g := parts[start+j].group
			res, err := r.ToArray()
			if err == nil && len(res) != 2 {
				err = fmt.Errorf("presence script answered %d values", len(res))
			}
			if err != nil {
				if firstErr == nil {
					firstErr = err
				}
				continue
			}
			left, _ := res[0].AsStrSlice()
			l.announceLeft(g, left)
			missing, _ := res[1].AsStrSlice()
			again := make(map[string]*tracked, len(missing))
			for _, ch := range missing {
				if t := l.presence.get(g, ch); t != nil {
					again[ch] = t
				}
			}
			if len(again) == 0 {
				continue
			}
			if err := l.presenceTrack(ctx, g, again, rejoin); err != nil {
				if firstErr == nil {
					firstErr = err
				}
				continue
			}
			readded += len(again)
			// Discarded while being tracked again: take it back (its join and leave are announced).
			var stale []string
			for ch, t := range again {
				if l.presence.get(g, ch) != t {
					stale = append(stale, ch)
				}
			}
			if len(stale) > 0 {
				left, err := presenceUntrackScript.Exec(ctx, c, l.presenceKeys(g), stale).AsStrSlice()
				if err != nil && firstErr == nil {
					firstErr = err
				}
				l.announceLeft(g, left)
			}
		}
	}
	return readded, firstErr
}

// presenceEvent is one join or leave to announce.
type presenceEvent struct {
	group, user string
	join        bool
	info        map[string]any
}

func (l *Layer) announceLeft(group string, users []string) {
	if len(users) == 0 {
		return
	}
	evs := make([]presenceEvent, len(users))
	for i, u := range users {
		evs[i] = presenceEvent{group: group, user: u}
	}
	l.announce(evs)
}

// announce sends events to their groups' companions (layer.PresenceGroup), never into a history,
// in the order this process learned of them for each group (a join is never overtaken by the
// leave that followed it), without a lock held while sending: l.events (drain.Queue) hands the
// whole queue to one goroutine at a time, which sends the events of each group together — at most
// maxEventsPerMessage a message — and different groups concurrently (sendBatch), then takes what
// was queued meanwhile: under a storm of joins, the events that gather while one message is sent
// go in the next.
func (l *Layer) announce(evs []presenceEvent) {
	l.events.Send(evs, func(batch []presenceEvent) { sendBatch(batch, l.sendPresence) })
}

// sendPresence sends the events of one group in one message. A send that fails (Redis degraded)
// is logged and counted in Stats.PresenceLost: the events are lost, the list stays right.
func (l *Layer) sendPresence(group string, evs []presenceEvent) {
	msg := presenceMessage(group, evs)
	ctx, cancel := context.WithTimeout(l.ctx, l.cfg.CallTimeout)
	defer cancel()
	if err := l.groupSend(ctx, layer.PresenceGroup(group), msg, false); err != nil && l.ctx.Err() == nil {
		l.st.presenceLost.Add(uint64(len(evs)))
		l.log.Warn("redislayer: presence events not sent", "group", group, "events", len(evs), "first_user", evs[0].user, "err", err)
	}
}

func validPresence(group, channel string) error {
	if err := layer.ValidatePresenceGroup(group); err != nil {
		return err
	}
	return layer.ValidateChannelName(channel)
}

func decodeInfo(v string) map[string]any {
	var d struct {
		I map[string]any `json:"i"`
	}
	_ = json.Unmarshal([]byte(v), &d)
	return d.I
}

// sendBatch sends the events of each group in order, in messages of at most maxEventsPerMessage,
// different groups concurrently (at most maxAnnounce at a time), and returns when all are sent.
func sendBatch(batch []presenceEvent, send func(group string, evs []presenceEvent)) {
	var order []string
	byGroup := make(map[string][]presenceEvent)
	for _, e := range batch {
		if byGroup[e.group] == nil {
			order = append(order, e.group)
		}
		byGroup[e.group] = append(byGroup[e.group], e)
	}
	sendGroup := func(group string, evs []presenceEvent) {
		for len(evs) > 0 {
			n := min(len(evs), maxEventsPerMessage)
			send(group, evs[:n])
			evs = evs[n:]
		}
	}
	if len(order) == 1 {
		sendGroup(order[0], byGroup[order[0]])
		return
	}
	var wg sync.WaitGroup
	sem := make(chan struct{}, maxAnnounce)
	for _, g := range order {
		sem <- struct{}{}
		wg.Add(1)
		go func(evs []presenceEvent) {
			defer wg.Done()
			defer func() { <-sem }()
			sendGroup(evs[0].group, evs)
		}(byGroup[g])
	}
	wg.Wait()
}

// maxAnnounce bounds the presence messages one process sends at once.
const maxAnnounce = 256
