package layer

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"ginws.dev/ginws/internal/drain"
)

// MemoryConfig configures a Memory. The zero value gives Channels' defaults; a zero field
// means its default, and NewMemory refuses negative values and malformed patterns.
type MemoryConfig struct {
	// Capacity is how many messages a channel holds before Send returns ErrChannelFull.
	// Optional. Default 100.
	Capacity int
	// ChannelCapacity overrides Capacity for channels whose name matches a pattern
	// (path.Match syntax, e.g. "http.request*"); the first matching rule wins. Each rule needs a
	// well-formed pattern and a positive capacity. Optional.
	ChannelCapacity []CapacityRule
	// Expiry is how long an unreceived message lives. Optional. Default 60 s.
	Expiry time.Duration
	// GroupExpiry is how long a group membership lives after its last GroupAdd. Connections that
	// live longer than this drop out of their groups, as in Channels. Optional. Default 86 400 s.
	GroupExpiry time.Duration
	// History keeps the last messages of the groups whose name matches a rule, so that a channel
	// can join from a position (GroupAddSince). The first matching rule wins. Optional: by default
	// no group has history.
	History []HistoryRule
}

func (cfg MemoryConfig) check() (Capacities, error) {
	switch {
	case cfg.Capacity < 0:
		return Capacities{}, &ConfigError{Field: "layer.MemoryConfig.Capacity", Value: cfg.Capacity, Rule: "must not be negative (zero means the default, 100)"}
	case cfg.Expiry < 0:
		return Capacities{}, &ConfigError{Field: "layer.MemoryConfig.Expiry", Value: cfg.Expiry, Rule: "must not be negative (zero means the default, 60 s)"}
	case cfg.GroupExpiry < 0:
		return Capacities{}, &ConfigError{Field: "layer.MemoryConfig.GroupExpiry", Value: cfg.GroupExpiry, Rule: "must not be negative (zero means the default, 86 400 s)"}
	}
	def := cfg.Capacity
	if def == 0 {
		def = DefaultCapacity
	}
	return NewCapacities("layer.MemoryConfig.ChannelCapacity", def, cfg.ChannelCapacity)
}

// Default layer settings, as in Django Channels.
const (
	DefaultCapacity    = 100
	DefaultExpiry      = 60 * time.Second
	DefaultGroupExpiry = 86400 * time.Second
)

// Memory is a channel layer for one process, with the semantics of Channels'
// InMemoryChannelLayer: per-channel capacity, message and group expiry, Channels' name rules.
// It implements Subscriber, so connections on it need no goroutine to wait for events.
//
// A Memory is safe for concurrent use. Its zero value is not usable; call NewMemory.
type Memory struct {
	capacity    Capacities
	histories   Histories
	expiry      time.Duration
	groupExpiry time.Duration

	mu        sync.RWMutex
	closed    bool
	channels  map[string]*memChannel
	groups    map[string]memGroup
	nextSweep time.Time
	subSeq    uint64
	presence  map[string]*memPresence // group → who is present (presence.go)
	history   map[string]*memHistory  // groups with history that have had a message or a join

	events drain.Queue[outEvent] // presence events, sent in order without a lock held (presence.go)

	dropped atomic.Uint64
	expired atomic.Uint64
}

var (
	_ Layer            = (*Memory)(nil)
	_ Subscriber       = (*Memory)(nil)
	_ CapacityReporter = (*Memory)(nil)
	_ Presence         = (*Memory)(nil)
	_ Resumer          = (*Memory)(nil)
)

// memChannel is one channel's state. Its fields are guarded by Memory.mu.
type memChannel struct {
	name    string
	deliver func(*Envelope) error // the subscriber's (Subscribe); nil without one
	subID   uint64                // which Subscribe deliver is from, for its unsubscribe
	refs    int                   // group memberships pointing here
	q       *memQueue             // made when a message is first queued or a receiver first waits
}

// memQueue is what a channel without a subscriber needs: its queued messages and its waiting
// receivers. A subscribed channel — a live connection's — never needs it, and so does not carry
// it: a server holds one memChannel per socket. Once made it stays with its channel. Its fields
// are guarded by Memory.mu.
type memQueue struct {
	capacity int // messages queued at most (MemoryConfig.Capacity, ChannelCapacity)
	msgs     []memQueued
	head     int           // msgs[head:] are queued
	ready    chan struct{} // closed when a message is queued; nil when nobody waits
	waiters  int           // Receive calls waiting
}

// queued returns how many messages ch has queued.
func (ch *memChannel) queued() int {
	if ch.q == nil {
		return 0
	}
	return len(ch.q.msgs) - ch.q.head
}

// queue returns ch's queue, making it. Callers hold l.mu.
func (l *Memory) queue(ch *memChannel) *memQueue {
	if ch.q == nil {
		ch.q = &memQueue{capacity: l.Capacity(ch.name)}
	}
	return ch.q
}

// takeAll empties ch's queue and returns what it held, oldest first, valid until the next push.
// Callers hold l.mu.
func (ch *memChannel) takeAll() []memQueued {
	q := ch.q
	if q == nil {
		return nil
	}
	all := q.msgs[q.head:]
	q.msgs, q.head = q.msgs[:0], 0
	return all
}

type memQueued struct {
	msg     Message
	expires time.Time
}

// memMember is one channel's membership of a group.
type memMember struct {
	ch     *memChannel
	joined int64 // when it was last added: monotonic nanoseconds, from mono
}

// monoBase is the origin of mono's clock.
var monoBase = time.Now()

// mono returns t as nanoseconds since monoBase on the monotonic clock: 8 bytes per membership
// instead of a time.Time's 24, and, like a time.Time from time.Now, unaffected by changes of the
// wall clock.
func mono(t time.Time) int64 { return int64(t.Sub(monoBase)) }

// memGroup is one group's members. Most groups of a server have one member — the group of a
// user, of a session, of a document open once — and a map for one entry costs some 250 bytes, so
// a group holds its only member inline, and makes the map when a second joins; it goes back to
// the inline member when all but one have left. A memGroup is a value in Memory.groups, guarded
// by Memory.mu like the map: a caller that changes one stores it back.
type memGroup struct {
	one  memMember             // the only member while many is nil; one.ch is nil in an empty group
	many map[string]*memMember // the members by channel name, when there are two or more
}

// refresh sets channel's join time to now and reports whether channel is a member.
func (g *memGroup) refresh(channel string, now int64) bool {
	if g.many != nil {
		if m := g.many[channel]; m != nil {
			m.joined = now
			return true
		}
		return false
	}
	if g.one.ch != nil && g.one.ch.name == channel {
		g.one.joined = now
		return true
	}
	return false
}

// add adds m, whose channel is not a member yet.
func (g *memGroup) add(m memMember) {
	switch {
	case g.many != nil:
		g.many[m.ch.name] = &m
	case g.one.ch == nil:
		g.one = m
	default:
		first := g.one
		g.many = map[string]*memMember{first.ch.name: &first, m.ch.name: &m}
		g.one = memMember{}
	}
}

// remove removes channel's membership and returns its channel, or nil if it was not a member.
func (g *memGroup) remove(channel string) *memChannel {
	if g.many == nil {
		ch := g.one.ch
		if ch == nil || ch.name != channel {
			return nil
		}
		g.one = memMember{}
		return ch
	}
	m := g.many[channel]
	if m == nil {
		return nil
	}
	delete(g.many, channel)
	if len(g.many) == 1 {
		for _, last := range g.many {
			g.one = *last
		}
		g.many = nil
	}
	return m.ch
}

// empty reports whether g has no member.
func (g memGroup) empty() bool { return g.many == nil && g.one.ch == nil }

// all yields the members of g. The caller may remove members meanwhile (removeMember): the
// members not yet yielded are still yielded if they are still members.
func (g memGroup) all() iter.Seq[memMember] {
	return func(yield func(memMember) bool) {
		if g.many == nil {
			if g.one.ch != nil {
				yield(g.one)
			}
			return
		}
		for _, m := range g.many {
			if !yield(*m) {
				return
			}
		}
	}
}

// MemoryStats is a snapshot of a Memory's counters.
type MemoryStats struct {
	Channels int    // channels with queued messages, receivers, subscribers or group memberships
	Groups   int    // groups with at least one member
	Dropped  uint64 // group messages a full member missed
	Expired  uint64 // messages and memberships removed by expiry
}

// NewMemory returns an in-memory channel layer. It panics with a *ConfigError if cfg has an
// invalid field.
func NewMemory(cfg MemoryConfig) *Memory {
	caps, err := cfg.check()
	if err != nil {
		panic(err)
	}
	hist, err := NewHistories("layer.MemoryConfig.History", cfg.History)
	if err != nil {
		panic(err)
	}
	l := &Memory{
		capacity:    caps,
		histories:   hist,
		history:     make(map[string]*memHistory),
		expiry:      cfg.Expiry,
		groupExpiry: cfg.GroupExpiry,
		channels:    make(map[string]*memChannel),
		groups:      make(map[string]memGroup),
		presence:    make(map[string]*memPresence),
	}
	if l.expiry <= 0 {
		l.expiry = DefaultExpiry
	}
	if l.groupExpiry <= 0 {
		l.groupExpiry = DefaultGroupExpiry
	}
	return l
}

// Capacity returns the capacity of channel.
func (l *Memory) Capacity(channel string) int { return l.capacity.Of(channel) }

// Stats returns the layer's counters.
func (l *Memory) Stats() MemoryStats {
	l.mu.Lock()
	defer l.mu.Unlock()
	return MemoryStats{
		Channels: len(l.channels),
		Groups:   len(l.groups),
		Dropped:  l.dropped.Load(),
		Expired:  l.expired.Load(),
	}
}

// Close releases waiting receivers; every later call returns ErrClosed.
func (l *Memory) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil
	}
	l.closed = true
	for _, ch := range l.channels {
		ch.wake()
	}
	return nil
}

// NewChannel returns "<prefix>.inmemory!<12 random letters>".
func (l *Memory) NewChannel(ctx context.Context, prefix string) (string, error) {
	if prefix == "" {
		prefix = "specific"
	}
	if err := ValidateGroupName(prefix); err != nil {
		return "", fmt.Errorf("layer: bad channel prefix: %w", err)
	}
	const letters = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
	var id [12]byte
	for i := range id {
		id[i] = letters[rand.IntN(len(letters))]
	}
	name := prefix + ".inmemory!" + string(id[:])
	if err := ValidateChannelName(name); err != nil {
		return "", err
	}
	return name, ctx.Err()
}

// Send sends msg to channel. The layer keeps its own deep copy of msg.
func (l *Memory) Send(ctx context.Context, channel string, msg Message) error {
	if err := ValidateChannelName(channel); err != nil {
		return err
	}
	m, err := prepare(ctx, msg)
	if err != nil {
		return err
	}
	now := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return ErrClosed
	}
	l.maybeSweep(now)
	ch := l.channel(channel)
	if ch.deliver != nil {
		return ch.deliver(NewEnvelope(m, ""))
	}
	if !l.push(ch, m, now) {
		l.release(ch)
		return ErrChannelFull
	}
	return nil
}

var errNilMessage = errors.New("layer: message is nil")

// prepare checks a message about to be sent and returns the layer's own copy of it.
func prepare(ctx context.Context, msg Message) (Message, error) {
	if msg == nil {
		return nil, errNilMessage
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return msg.Clone(), nil
}

// Receive waits for the next message on channel.
func (l *Memory) Receive(ctx context.Context, channel string) (Message, error) {
	if err := ValidateChannelName(channel); err != nil {
		return nil, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for {
		if l.closed {
			return nil, ErrClosed
		}
		ch := l.channel(channel)
		if ch.deliver != nil {
			l.release(ch)
			return nil, errors.New("layer: channel " + channel + " is consumed by a subscriber; Receive cannot be used on it")
		}
		now := time.Now()
		l.dropExpired(ch, now)
		q := l.queue(ch)
		if q.head < len(q.msgs) {
			m := q.msgs[q.head]
			q.msgs[q.head] = memQueued{}
			q.head++
			if q.head == len(q.msgs) {
				q.msgs, q.head = q.msgs[:0], 0
			}
			l.release(ch)
			return m.msg, nil
		}
		if q.ready == nil {
			q.ready = make(chan struct{})
		}
		ready := q.ready
		q.waiters++
		l.mu.Unlock()
		var err error
		select {
		case <-ready:
		case <-ctx.Done():
			err = ctx.Err()
		}
		l.mu.Lock()
		q.waiters--
		if err != nil {
			l.release(ch)
			return nil, err
		}
	}
}

// GroupAdd adds channel to group, or refreshes its membership.
func (l *Memory) GroupAdd(ctx context.Context, group, channel string) error {
	if err := ValidateGroupName(group); err != nil {
		return err
	}
	if err := ValidateChannelName(channel); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	now := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return ErrClosed
	}
	g := l.groups[group]
	if !g.refresh(channel, mono(now)) {
		ch := l.channel(channel)
		ch.refs++
		g.add(memMember{ch: ch, joined: mono(now)})
	}
	l.groups[group] = g
	return nil
}

// GroupDiscard removes channel from group.
func (l *Memory) GroupDiscard(ctx context.Context, group, channel string) error {
	if err := ValidateGroupName(group); err != nil {
		return err
	}
	if err := ValidateChannelName(channel); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return ErrClosed
	}
	l.removeMember(group, channel)
	return nil
}

func (l *Memory) removeMember(group, channel string) {
	g, ok := l.groups[group]
	if !ok {
		return
	}
	ch := g.remove(channel)
	if ch == nil {
		return
	}
	if g.empty() {
		delete(l.groups, group)
	} else {
		l.groups[group] = g
	}
	ch.refs--
	l.release(ch)
}

// GroupSend sends msg to every member of group. A member whose channel is full misses the message;
// the drop is counted in Stats().Dropped. Group sends run in parallel (under a read lock) while
// every member is subscribed — the case of live connections; queueing for members that are not,
// and removing expired memberships, take the write lock afterwards.
func (l *Memory) GroupSend(ctx context.Context, group string, msg Message) error {
	if err := ValidateGroupName(group); err != nil {
		return err
	}
	m, err := prepare(ctx, msg)
	if err != nil {
		return err
	}
	if rule, ok := l.histories.Of(group); ok {
		return l.groupSendHistory(group, m, rule)
	}
	return l.groupSend(group, m, nil)
}

// groupSend delivers m to the members of group: env when it is not nil (a message with a
// position), else an Envelope made on first use.
func (l *Memory) groupSend(group string, m Message, env *Envelope) error {
	now := time.Now()
	cutoff := mono(now.Add(-l.groupExpiry))
	var rest bool // members to queue for, or to expire
	l.mu.RLock()
	if l.closed {
		l.mu.RUnlock()
		return ErrClosed
	}
	for mem := range l.groups[group].all() {
		ch := mem.ch
		if ch.deliver == nil || mem.joined < cutoff {
			rest = true
			continue
		}
		if env == nil {
			env = NewEnvelope(m, group)
		}
		if ch.deliver(env) != nil {
			l.dropped.Add(1)
		}
	}
	sweep := !now.Before(l.nextSweep)
	l.mu.RUnlock()
	if !rest && !sweep {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.maybeSweep(now)
	for mem := range l.groups[group].all() {
		if mem.joined < cutoff {
			l.expired.Add(1)
			l.removeMember(group, mem.ch.name)
			continue
		}
		if mem.ch.deliver == nil && !l.push(mem.ch, m, now) {
			l.dropped.Add(1)
		}
	}
	return nil
}

// Flush empties every channel, group and presence list (announcing nothing). Subscriptions stay
// in place.
func (l *Memory) Flush(ctx context.Context) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.groups = make(map[string]memGroup)
	l.presence = make(map[string]*memPresence)
	l.history = make(map[string]*memHistory)
	for name, ch := range l.channels {
		clear(ch.takeAll())
		ch.refs = 0
		if ch.deliver == nil && (ch.q == nil || ch.q.waiters == 0) {
			delete(l.channels, name)
		}
	}
	return ctx.Err()
}

// Subscribe pushes the messages of channel to deliver until unsubscribe is called. Messages queued
// before the call are delivered first.
func (l *Memory) Subscribe(channel string, deliver func(*Envelope) error) (func(), error) {
	if err := ValidateChannelName(channel); err != nil {
		return nil, err
	}
	if deliver == nil {
		return nil, errors.New("layer: Subscribe needs a deliver function")
	}
	now := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil, ErrClosed
	}
	ch := l.channel(channel)
	if ch.deliver != nil {
		return nil, errors.New("layer: channel " + channel + " already has a subscriber")
	}
	l.subSeq++
	id := l.subSeq
	ch.deliver, ch.subID = deliver, id
	l.dropExpired(ch, now)
	queued := ch.takeAll()
	for _, q := range queued {
		if deliver(NewEnvelope(q.msg, "")) != nil {
			l.dropped.Add(1)
		}
	}
	clear(queued)
	return func() {
		l.mu.Lock()
		defer l.mu.Unlock()
		if ch.subID == id && l.channels[ch.name] == ch {
			ch.deliver, ch.subID = nil, 0
			l.release(ch)
		}
	}, nil
}

// channel returns the state of name, creating it. Callers hold l.mu.
func (l *Memory) channel(name string) *memChannel {
	ch := l.channels[name]
	if ch == nil {
		ch = &memChannel{name: name}
		l.channels[name] = ch
	}
	return ch
}

// release forgets a channel nobody uses any more. Callers hold l.mu.
func (l *Memory) release(ch *memChannel) {
	if ch.refs == 0 && ch.deliver == nil && ch.queued() == 0 && (ch.q == nil || ch.q.waiters == 0) {
		if l.channels[ch.name] == ch {
			delete(l.channels, ch.name)
		}
	}
}

// push queues m on ch unless it is full. Callers hold l.mu.
func (l *Memory) push(ch *memChannel, m Message, now time.Time) bool {
	l.dropExpired(ch, now)
	q := l.queue(ch)
	if len(q.msgs)-q.head >= q.capacity {
		return false
	}
	if q.head > 0 && len(q.msgs) == cap(q.msgs) {
		n := copy(q.msgs, q.msgs[q.head:])
		clear(q.msgs[n:])
		q.msgs, q.head = q.msgs[:n], 0
	}
	q.msgs = append(q.msgs, memQueued{msg: m, expires: now.Add(l.expiry)})
	ch.wake()
	return true
}

// wake releases the receivers waiting on ch. Callers hold l.mu.
func (ch *memChannel) wake() {
	if q := ch.q; q != nil && q.ready != nil {
		close(q.ready)
		q.ready = nil
	}
}

// dropExpired removes expired messages from the front of ch's queue (all messages of one layer
// share one expiry, so the queue is ordered by expiry). Callers hold l.mu.
func (l *Memory) dropExpired(ch *memChannel, now time.Time) {
	q := ch.q
	if q == nil {
		return
	}
	for q.head < len(q.msgs) && !now.Before(q.msgs[q.head].expires) {
		q.msgs[q.head] = memQueued{}
		q.head++
		l.expired.Add(1)
	}
	if q.head == len(q.msgs) {
		q.msgs, q.head = q.msgs[:0], 0
	}
}

// maybeSweep drops expired messages and memberships everywhere, at most once per expiry period,
// so channels and groups nobody touches again do not keep memory forever. Callers hold l.mu.
func (l *Memory) maybeSweep(now time.Time) {
	if now.Before(l.nextSweep) {
		return
	}
	period := min(l.expiry, l.groupExpiry)
	l.nextSweep = now.Add(period)
	cutoff := mono(now.Add(-l.groupExpiry))
	for group, g := range l.groups {
		for m := range g.all() {
			if m.joined < cutoff {
				l.expired.Add(1)
				l.removeMember(group, m.ch.name)
			}
		}
	}
	for _, ch := range l.channels {
		l.dropExpired(ch, now)
		l.release(ch)
	}
	l.sweepHistory(now)
}
