package redislayer

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/rueidis"

	"ginws.dev/ginws/internal/drain"
	"ginws.dev/ginws/layer"
)

// Layer is a ginws channel layer on Redis, wire-compatible with channels_redis 4.x.
//
// A Layer is safe for concurrent use. Its receive loops start with the first Subscribe or Receive
// on a process-local channel; Close stops them and closes the Redis connections.
type Layer struct {
	cfg          Config
	capacity     layer.Capacities // Capacity and ChannelCapacity
	histories    layer.Histories  // History
	shards       []rueidis.Client
	clientPrefix string // the uuid4 hex shared by this Layer's process-local channels
	expirySec    int64
	groupSec     int64
	log          *slog.Logger

	ctx      context.Context // canceled by Close; bounds the receive loops
	cancel   context.CancelFunc
	wg       sync.WaitGroup // the receive loops
	inflight sync.WaitGroup // normal-channel receives; Add under mu.RLock while open, see enter
	closed   atomic.Bool
	sendIdx  atomic.Uint64 // round-robin shard of normal-channel sends
	noBzmpop atomic.Bool   // Redis older than 7: pop with BZPOPMIN + ZPOPMIN

	// holding counts the joins from a position under way (history.go): while it is not zero, the
	// receive loops look up holds before delivering.
	holding atomic.Int32

	mu      sync.RWMutex
	holds   map[string][]*hold // channel → its joins from a position under way (history.go)
	loops   map[string]bool    // process-local keys (prefix+"...!") with running loops
	lags    []*atomic.Int64    // each receive loop's lag in nanoseconds, stored by the loop (Stats.ReceiveLag)
	blocked sync.Map           // rueidis.DedicatedClient → blockedConn, the loops' connections
	local                      // subscribers and buffers of this process's channels

	members memberships   // this process's memberships, re-added after faults (members.go)
	health  []*shardState // one per shard, kept by the keepers (keeper.go)

	presence presenceTable              // this process's tracked connections, refreshed by the keepers (presence.go)
	events   drain.Queue[presenceEvent] // presence events waiting to be sent, in order (announce)
	batcher  presenceBatcher            // tracks and untracks waiting to be applied (presence_batch.go)
	expanded expandedQueue              // presence events popped for Receive on normal channels, not yet returned (presence_events.go)

	st counters
}

var (
	_ layer.Layer            = (*Layer)(nil)
	_ layer.Subscriber       = (*Layer)(nil)
	_ layer.CapacityReporter = (*Layer)(nil)
	_ layer.Presence         = (*Layer)(nil)
	_ layer.Resumer          = (*Layer)(nil)
)

// Stats is a snapshot of a Layer's counters.
type Stats struct {
	Sent         uint64 // messages written to Redis (one per channel key reached by a group send)
	GroupSends   uint64 // GroupSend calls that reached Redis
	Received     uint64 // messages popped from Redis by this process
	Delivered    uint64 // deliveries to local subscribers and receivers
	Dropped      uint64 // group messages a full channel key or a full local recipient missed
	Expired      uint64 // popped messages older than Expiry, discarded
	BadMessages  uint64 // popped members that could not be decoded
	LoopErrors   uint64 // failed receive-loop round trips (Redis unreachable...)
	Reconnects   uint64 // times a receive loop resumed after failing
	LocalBuffers int    // process-local channels with messages waiting for Receive

	// Degradations counts the times a shard became degraded (see Health); DegradedFor adds up
	// how long the ended ones lasted; DegradedShards is how many shards are degraded now.
	Degradations   uint64
	DegradedFor    time.Duration
	DegradedShards int
	// GroupSendsRefused counts group sends refused with ErrDegraded.
	GroupSendsRefused uint64
	// Memberships is how many memberships of this process's channels the layer keeps; Readded
	// counts those written again after a fault, Refreshed those rewritten before GroupExpiry.
	Memberships int
	Readded     uint64
	Refreshed   uint64
	// Tracked is how many connections this process tracks for presence; PresenceReadded counts
	// those tracked again after Redis lost them (or swept them while this process was stalled).
	// PresenceLost counts the join and leave events this process could not announce (their group
	// send failed: Redis unreachable or too slow; each failure is logged). The lists stay right.
	Tracked         int
	PresenceReadded uint64
	PresenceLost    uint64
	// Replayed counts messages delivered from a group's history by GroupAddSince.
	Replayed uint64
	// Calls are the latency histograms of the layer's calls to Redis, by kind: "send",
	// "group_send", "group_add" (GroupAdd and GroupAddSince), "group_discard", "receive" (a
	// pop by Receive on a normal channel; the receive loops' blocking pops, which wait for
	// messages, are not timed: see ReceiveLag and LoopErrors) and "presence" (one script call
	// applying the PresenceAdd and PresenceDiscard calls a shard coalesced: see PresenceLinger).
	Calls map[string]CallStats
	// ReceiveLag is how far behind the receive loops are: the largest over the loops of the age,
	// when it was popped, of the oldest message in the loop's last pop (now minus its score, the
	// sender's clock at send time, as channels_redis writes it); a loop whose last pop waited
	// PollTimeout for nothing counts zero. It grows when the loops cannot keep up (or Redis is
	// slow to answer); skew between the sender's clock and this host's shows in it too.
	ReceiveLag time.Duration
}

type counters struct {
	sent, groupSends, received, delivered, dropped, expired, bad, loopErrors, reconnects atomic.Uint64
	degradations, degradedNanos, refused, readded, refreshed, presenceReadded, replayed  atomic.Uint64
	presenceLost                                                                         atomic.Uint64

	calls [numCallOps]callHist // latency of the calls that reach Redis, by kind (calls.go)
}

// New returns a Redis channel layer. It connects to each host once, but a host that is down is not
// an error: calls fail until it is back and the receive loops retry with backoff. Only a malformed
// configuration is an error: a *layer.ConfigError naming the field.
func New(cfg Config) (*Layer, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	caps, err := layer.NewCapacities("redislayer.Config.ChannelCapacity", cfg.Capacity, cfg.ChannelCapacity)
	if err != nil {
		return nil, err
	}
	hist, err := layer.NewHistories("redislayer.Config.History", cfg.History)
	if err != nil {
		return nil, err
	}
	l := &Layer{
		cfg:          cfg,
		capacity:     caps,
		histories:    hist,
		holds:        make(map[string][]*hold),
		clientPrefix: uuidHex(),
		expirySec:    seconds(cfg.Expiry),
		groupSec:     seconds(cfg.GroupExpiry),
		log:          cfg.Logger,
		loops:        make(map[string]bool),
		local:        newLocal(),
		members:      newMemberships(),
		presence:     newPresenceTable(),
		batcher:      newPresenceBatcher(len(cfg.Hosts)),
	}
	opts := make([]rueidis.ClientOption, len(cfg.Hosts))
	for i, h := range cfg.Hosts {
		o, err := cfg.clientOption(h)
		if err != nil {
			return nil, err
		}
		opts[i] = o
	}
	for i, o := range opts {
		c, err := rueidis.NewClient(o)
		if c == nil {
			for _, s := range l.shards {
				s.Close()
			}
			return nil, fmt.Errorf("redislayer: host %d (%s): %w", i, redact(cfg.Hosts[i]), err)
		}
		if err != nil {
			cfg.Logger.Warn("redislayer: Redis is unreachable; calls fail until it is back", "host", redact(cfg.Hosts[i]), "err", err)
		}
		l.shards = append(l.shards, c)
		l.health = append(l.health, newShardState(i, redact(cfg.Hosts[i])))
	}
	l.ctx, l.cancel = context.WithCancel(context.Background())
	for i := range l.shards {
		l.wg.Add(1)
		go l.keep(i)
	}
	return l, nil
}

// Close stops the receive loops, wakes every waiting Receive with layer.ErrClosed and closes
// the Redis connections. It is idempotent. It waits for Receives on normal channels to finish, so
// that a message one of them popped meanwhile is put back, not lost. A message popped by a receive
// loop at that very moment is lost with the process-local channels it was for.
func (l *Layer) Close() error {
	if !l.closed.CompareAndSwap(false, true) {
		return nil
	}
	l.mu.Lock() // after this, enter sees closed and no inflight.Add races Wait
	l.local.closeAll()
	l.mu.Unlock()
	l.cancel()
	done := make(chan struct{})
	go func() {
		l.wg.Wait()
		l.inflight.Wait()
		close(done)
	}()
	for stop := false; !stop; {
		l.unblockLoops()
		select {
		case <-done:
			stop = true
		case <-time.After(100 * time.Millisecond): // a pop was between its check and BZPOPMIN
		}
	}
	for _, c := range l.shards {
		c.Close()
	}
	return nil
}

// Stats returns the layer's counters.
func (l *Layer) Stats() Stats {
	l.mu.RLock()
	buffers := len(l.bufs)
	var lag time.Duration
	for _, v := range l.lags {
		lag = max(lag, time.Duration(v.Load()))
	}
	l.mu.RUnlock()
	down := 0
	for _, s := range l.health {
		if s.downFlag.Load() {
			down++
		}
	}
	calls := make(map[string]CallStats, numCallOps)
	for op, name := range callOpNames {
		calls[name] = l.st.calls[op].snapshot()
	}
	return Stats{
		Sent: l.st.sent.Load(), GroupSends: l.st.groupSends.Load(), Received: l.st.received.Load(),
		Delivered: l.st.delivered.Load(), Dropped: l.st.dropped.Load(), Expired: l.st.expired.Load(),
		BadMessages: l.st.bad.Load(), LoopErrors: l.st.loopErrors.Load(), Reconnects: l.st.reconnects.Load(),
		LocalBuffers: buffers,
		Degradations: l.st.degradations.Load(), DegradedFor: time.Duration(l.st.degradedNanos.Load()),
		DegradedShards: down, GroupSendsRefused: l.st.refused.Load(),
		Memberships: l.members.len(), Readded: l.st.readded.Load(), Refreshed: l.st.refreshed.Load(),
		Tracked: l.presence.len(), PresenceReadded: l.st.presenceReadded.Load(),
		PresenceLost: l.st.presenceLost.Load(),
		Replayed:     l.st.replayed.Load(),
		Calls:        calls, ReceiveLag: lag,
	}
}

// NewChannel returns "<prefix>.<client uuid hex>!<uuid hex>", as channels_redis' new_channel does.
// Every channel of this Layer with the same prefix shares one Redis key, "<Prefix><prefix>.<client>!".
func (l *Layer) NewChannel(ctx context.Context, prefix string) (string, error) {
	if prefix == "" {
		prefix = "specific"
	}
	if err := layer.ValidateGroupName(prefix); err != nil {
		return "", fmt.Errorf("redislayer: bad channel prefix: %w", err)
	}
	name := prefix + "." + l.clientPrefix + "!" + uuidHex()
	if err := layer.ValidateChannelName(name); err != nil {
		return "", err
	}
	return name, ctx.Err()
}

// Send sends msg to channel. It returns layer.ErrChannelFull when the channel holds its capacity.
// A process-local channel's shard is chosen by the hash of its non-local part, the key it is
// received from; a normal channel's shard round-robin, as channels_redis does, with the capacity
// counted over every shard (see the package documentation).
func (l *Layer) Send(ctx context.Context, channel string, msg layer.Message) (err error) {
	if err := layer.ValidateChannelName(channel); err != nil {
		return err
	}
	b, err := encodeBody(msg)
	if err != nil {
		return err
	}
	ctx, cancel, err := l.call(ctx)
	if err != nil {
		return err
	}
	defer cancel()
	defer l.observe(opSend, time.Now(), &err)
	single := ""
	if layer.IsProcessLocal(channel) {
		single = channel
	}
	keyName := layer.NonLocalName(channel)
	key := l.cfg.Prefix + keyName
	now := time.Now()
	c, capacity := l.shard(keyName), l.keyCapacity(channel)
	if single == "" && len(l.shards) > 1 {
		i := int(l.sendIdx.Add(1) % uint64(len(l.shards)))
		c = l.shards[i]
		// The capacity bounds the channel, not each shard's key: subtract what the others hold.
		// Like channels_redis' own check this is not atomic; concurrent senders may overshoot.
		for j, o := range l.shards {
			if j == i {
				continue
			}
			n, err := o.Do(ctx, o.B().Zcount().Key(key).Min("("+l.cutoff(now, l.expirySec)).Max("+inf").Build()).AsInt64()
			if err != nil {
				return l.callError(fmt.Sprintf("send to %q", channel), err)
			}
			capacity -= int(n)
		}
	}
	res := sendScript.Exec(ctx, c, []string{key}, []string{
		string(b.member(randomPrefix(), single, nil)), score(now),
		strconv.Itoa(capacity), strconv.FormatInt(l.expirySec, 10), l.cutoff(now, l.expirySec),
	})
	ok, err := res.AsInt64()
	if err != nil {
		l.poke(keyName)
		return l.callError(fmt.Sprintf("send to %q", channel), err)
	}
	if ok == 0 {
		return layer.ErrChannelFull
	}
	l.st.sent.Add(1)
	return nil
}

// GroupAdd adds channel to group, refreshing the group's expiry: ZADD with the time as score, then
// EXPIRE, pipelined in one round trip on the group's shard (not a script: each command is
// idempotent, and a failure between them leaves the previous expiry in place).
//
// A process-local channel of this Layer is also recorded here, before the write, so that a resync
// running meanwhile includes it: the layer then keeps the membership while the channel lives
// (see the package documentation, "Faults"). When the write fails, a membership recorded by this
// call alone is forgotten again; like any failed write, the ZADD may still have reached Redis.
func (l *Layer) GroupAdd(ctx context.Context, group, channel string) (err error) {
	if err := validGroupChannel(group, channel); err != nil {
		return err
	}
	ctx, cancel, err := l.call(ctx)
	if err != nil {
		return err
	}
	defer cancel()
	now := time.Now()
	defer l.observe(opGroupAdd, now, &err)
	tracked := l.tracks(channel) && l.members.add(group, channel, now)
	c, key := l.shard(group), l.groupKey(group)
	for _, r := range c.DoMulti(ctx,
		c.B().Zadd().Key(key).ScoreMember().ScoreMember(scoreFloat(now), channel).Build(),
		c.B().Expire().Key(key).Seconds(l.groupSec).Build(),
	) {
		if err := r.Error(); err != nil {
			if tracked {
				l.members.forget(group, channel)
			}
			return l.callError(fmt.Sprintf("add %q to group %q", channel, group), err)
		}
	}
	return nil
}

// GroupDiscard removes channel from group (ZREM), and from the memberships this layer keeps —
// also when the ZREM fails, so that the layer never writes the membership again (what Redis still
// holds expires after GroupExpiry, and this process discards what reaches the channel after its
// subscriber left).
func (l *Layer) GroupDiscard(ctx context.Context, group, channel string) (err error) {
	if err := validGroupChannel(group, channel); err != nil {
		return err
	}
	if l.tracks(channel) {
		l.members.forget(group, channel)
	}
	ctx, cancel, err := l.call(ctx)
	if err != nil {
		return err
	}
	defer cancel()
	defer l.observe(opGroupDiscard, time.Now(), &err)
	c := l.shard(group)
	if err := c.Do(ctx, c.B().Zrem().Key(l.groupKey(group)).Member(channel).Build()).Error(); err != nil {
		return l.callError(fmt.Sprintf("discard %q from group %q", channel, group), err)
	}
	return nil
}

// tracks reports whether the layer keeps channel's memberships: a process-local channel of this
// Layer.
func (l *Layer) tracks(channel string) bool {
	if !layer.IsProcessLocal(channel) {
		return false
	}
	_, err := l.ownChannel(channel)
	return err == nil
}

// Flush deletes every key that starts with Prefix on every shard, as channels_redis' flush, and
// empties this process's local buffers and the memberships and presence it keeps (announcing
// nothing).
func (l *Layer) Flush(ctx context.Context) error {
	ctx, cancel, err := l.call(ctx)
	if err != nil {
		return err
	}
	defer cancel()
	l.members.clear()
	l.presence.clear()
	for _, s := range l.health {
		s.flushing(+1)
	}
	defer func() {
		for _, s := range l.health {
			s.flushing(-1)
		}
	}()
	pattern := globEscape(l.cfg.Prefix) + "*"
	for i, c := range l.shards {
		if err := flushScript.Exec(ctx, c, nil, []string{pattern}).Error(); err != nil {
			return l.callError(fmt.Sprintf("flush shard %d", i), err)
		}
	}
	l.mu.Lock()
	l.local.flush()
	l.mu.Unlock()
	return nil
}

// call checks the layer is open and bounds ctx by CallTimeout when it has no deadline.
func (l *Layer) call(ctx context.Context) (context.Context, context.CancelFunc, error) {
	if l.closed.Load() {
		return nil, nil, layer.ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return nil, nil, err
	}
	if _, ok := ctx.Deadline(); ok {
		return ctx, func() {}, nil
	}
	ctx, cancel := context.WithTimeout(ctx, l.cfg.CallTimeout)
	return ctx, cancel, nil
}

// callError wraps a failed Redis call. A call that passed the closed check while Close shut the
// connections reports layer.ErrClosed, not rueidis' own error.
func (l *Layer) callError(what string, err error) error {
	if l.closed.Load() {
		return fmt.Errorf("redislayer: %s: %w (%w)", what, layer.ErrClosed, err)
	}
	return fmt.Errorf("redislayer: %s: %w", what, err)
}

// shard returns the client of the shard that holds name (a group name or a channel key name).
func (l *Layer) shard(name string) rueidis.Client {
	return l.shards[consistentHash(name, len(l.shards))]
}

func (l *Layer) groupKey(group string) string { return l.cfg.Prefix + ":group:" + group }

// cutoff is channels_redis' expiry bound: int(time.time()) - expiry.
func (l *Layer) cutoff(now time.Time, expirySec int64) string {
	return strconv.FormatInt(now.Unix()-expirySec, 10)
}

// score is time.time() as channels_redis writes it: float seconds.
func score(t time.Time) string { return strconv.FormatFloat(scoreFloat(t), 'f', 6, 64) }

func scoreFloat(t time.Time) float64 { return float64(t.UnixMicro()) / 1e6 }

func validGroupChannel(group, channel string) error {
	if err := layer.ValidateGroupName(group); err != nil {
		return err
	}
	return layer.ValidateChannelName(channel)
}

// uuidHex returns a random (version 4) UUID as 32 hex digits, like Python's uuid.uuid4().hex.
func uuidHex() string {
	var u [16]byte
	_, _ = rand.Read(u[:]) // crypto/rand.Read never fails on supported platforms
	u[6] = u[6]&0x0f | 0x40
	u[8] = u[8]&0x3f | 0x80
	return hex.EncodeToString(u[:])
}

// globEscape quotes the characters KEYS patterns treat specially.
func globEscape(s string) string {
	var b strings.Builder
	for _, r := range s {
		if strings.ContainsRune(`*?[]\`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// redact hides the passwords in a host URL for logs: its user info and a sentinel_password.
func redact(host string) string {
	if q := strings.IndexByte(host, '?'); q >= 0 {
		params := strings.Split(host[q+1:], "&")
		for i, p := range params {
			if strings.HasPrefix(p, "sentinel_password=") {
				params[i] = "sentinel_password=***"
			}
		}
		host = host[:q+1] + strings.Join(params, "&")
	}
	if at := strings.LastIndexByte(host, '@'); at >= 0 {
		if scheme := strings.Index(host, "://"); scheme >= 0 && scheme < at {
			return host[:scheme+3] + "***" + host[at:]
		}
	}
	return host
}

var errForeignChannel = errors.New("redislayer: process-local channel belongs to another process (or Layer)")
