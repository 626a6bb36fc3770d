package redislayer

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/rueidis"

	"ginws.dev/ginws"
)

// Receiving. All process-local channels of this Layer with one prefix share one Redis key,
// "<Prefix><prefix>.<client>!". One loop per such key and per shard pops it with BZPOPMIN (and
// drains what else is waiting with ZPOPMIN), decodes each message once, and hands one Envelope to
// every local recipient named in "__asgi_channel__": a subscriber's callback, or the buffer a
// Receive call reads. Normal (non-'!') channels are received directly from their own key.

// local is the state of this process's channels. Guarded by Layer.mu: the loops deliver under the
// read lock, so once unsubscribe returns, its callback is never called again.
type local struct {
	subs   map[string]*subscription
	bufs   map[string]*localBuf
	gone   goneSet   // unsubscribed channels; their late messages are discarded
	sweep  time.Time // next sweep of expired buffered messages
	closed chan struct{}
}

type subscription struct {
	deliver func(*ginws.Envelope) error
}

// localBuf holds messages for a process-local channel that has no subscriber, for Receive.
// Bounded by the channel's capacity: the oldest message is dropped, as channels_redis does.
type localBuf struct {
	msgs    []bufMsg
	ready   chan struct{} // closed when a message arrives; nil when nobody waits
	waiters int
}

type bufMsg struct {
	msg     ginws.Message
	expires time.Time
}

func newLocal() local {
	return local{
		subs: make(map[string]*subscription), bufs: make(map[string]*localBuf),
		gone: goneSet{at: make(map[string]time.Time)}, closed: make(chan struct{}),
	}
}

func (lc *local) closeAll() {
	close(lc.closed)
}

func (lc *local) flush() {
	for name, b := range lc.bufs {
		clear(b.msgs)
		b.msgs = b.msgs[:0]
		if b.waiters == 0 {
			delete(lc.bufs, name)
		}
	}
}

// Subscribe pushes the messages of a process-local channel made by this Layer's NewChannel to
// deliver, from the receive loop, until unsubscribe is called. Messages already buffered for the
// channel are delivered first. deliver runs on the receive loop: it must not block.
func (l *Layer) Subscribe(channel string, deliver func(*ginws.Envelope) error) (func(), error) {
	keyName, err := l.ownChannel(channel)
	if err != nil {
		return nil, err
	}
	if deliver == nil {
		return nil, errors.New("redislayer: Subscribe needs a deliver function")
	}
	sub := &subscription{deliver: deliver}
	l.mu.Lock()
	if l.closed.Load() {
		l.mu.Unlock()
		return nil, ginws.ErrLayerClosed
	}
	if l.subs[channel] != nil {
		l.mu.Unlock()
		return nil, fmt.Errorf("redislayer: channel %s already has a subscriber", channel)
	}
	l.subs[channel] = sub
	l.gone.remove(channel)
	if b := l.bufs[channel]; b != nil {
		now := time.Now()
		for _, m := range b.msgs {
			l.deliverOne(sub, ginws.NewEnvelope(m.msg), now, m.expires)
		}
		clear(b.msgs)
		b.msgs = b.msgs[:0]
		if b.waiters == 0 {
			delete(l.bufs, channel)
		}
	}
	l.startLoops(keyName)
	l.mu.Unlock()
	return func() {
		l.mu.Lock()
		if l.subs[channel] == sub {
			delete(l.subs, channel)
			// Group messages already on their way to a closed connection are discarded, not
			// buffered for a Receive that will never come.
			l.gone.add(channel, time.Now(), l.cfg.GroupExpiry)
		}
		l.mu.Unlock()
	}, nil
}

func (l *Layer) deliverOne(sub *subscription, env *ginws.Envelope, now, expires time.Time) {
	switch {
	case !now.Before(expires):
		l.st.expired.Add(1)
	case sub.deliver(env) != nil:
		l.st.dropped.Add(1)
	default:
		l.st.delivered.Add(1)
	}
}

// ownChannel checks that channel is a process-local channel of this Layer and returns its key name.
func (l *Layer) ownChannel(channel string) (string, error) {
	if err := ginws.ValidateChannelName(channel); err != nil {
		return "", err
	}
	keyName := ginws.NonLocalName(channel)
	if !ginws.IsProcessLocal(channel) || !strings.HasSuffix(keyName, "."+l.clientPrefix+"!") {
		return "", fmt.Errorf("%w: %s", errForeignChannel, channel)
	}
	return keyName, nil
}

// Receive waits for the next message on channel. For a process-local channel the message comes
// from the receive loop; for a normal channel, Receive pops the channel's key itself (BZPOPMIN, in
// slices of PollTimeout so that ctx is honoured; a message popped after ctx ended is put back).
func (l *Layer) Receive(ctx context.Context, channel string) (ginws.Message, error) {
	if err := ginws.ValidateChannelName(channel); err != nil {
		return nil, err
	}
	if l.closed.Load() {
		return nil, ginws.ErrLayerClosed
	}
	if !ginws.IsProcessLocal(channel) {
		return l.receiveDirect(ctx, channel)
	}
	keyName, err := l.ownChannel(channel)
	if err != nil {
		return nil, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.startLoops(keyName)
	l.gone.remove(channel)
	for {
		if l.closed.Load() {
			return nil, ginws.ErrLayerClosed
		}
		if l.subs[channel] != nil {
			return nil, fmt.Errorf("redislayer: channel %s is consumed by a subscriber; Receive cannot be used on it", channel)
		}
		b := l.bufs[channel]
		if b == nil {
			b = &localBuf{}
			l.bufs[channel] = b
		}
		now := time.Now()
		for len(b.msgs) > 0 {
			m := b.msgs[0]
			b.msgs[0] = bufMsg{}
			b.msgs = b.msgs[1:]
			if now.Before(m.expires) {
				if len(b.msgs) == 0 && b.waiters == 0 {
					delete(l.bufs, channel)
				}
				l.st.delivered.Add(1)
				return m.msg, nil
			}
			l.st.expired.Add(1)
		}
		if b.ready == nil {
			b.ready = make(chan struct{})
		}
		ready := b.ready
		b.waiters++
		l.mu.Unlock()
		select {
		case <-ready:
		case <-ctx.Done():
		case <-l.local.closed:
		}
		l.mu.Lock()
		b.waiters--
		if err := ctx.Err(); err != nil {
			if len(b.msgs) == 0 && b.waiters == 0 && l.bufs[channel] == b {
				delete(l.bufs, channel)
			}
			return nil, err
		}
	}
}

// startLoops starts the receive loops of a process-local key, one per shard, once. Watching the
// key on every shard (not only the one its name hashes to) also catches messages that a
// channels_redis sender put on the shard of the full channel name. Callers hold l.mu.
func (l *Layer) startLoops(keyName string) {
	if l.loops[keyName] || l.closed.Load() {
		return
	}
	l.loops[keyName] = true
	for _, c := range l.shards {
		l.wg.Add(1)
		go l.loop(c, l.cfg.Prefix+keyName)
	}
}

// loop pops key until Close, delivering what it pops. It blocks on a dedicated connection whose
// Redis client ID it registers, so that Close can end the wait at once with CLIENT UNBLOCK. When
// Redis fails it logs, waits (50 ms, doubling up to MaxBackoff) and tries again on a new connection.
func (l *Layer) loop(c rueidis.Client, key string) {
	defer l.wg.Done()
	var (
		dc      rueidis.DedicatedClient
		release func()
		backoff time.Duration
	)
	drop := func() {
		if dc != nil {
			l.blocked.Delete(dc)
			release()
			dc = nil
		}
	}
	defer drop()
	for l.ctx.Err() == nil {
		var items []rueidis.ZScore
		var err error
		if dc == nil {
			dc, release = c.Dedicate()
			var id int64
			if id, err = dc.Do(l.ctx, dc.B().ClientId().Build()).AsInt64(); err == nil {
				l.blocked.Store(dc, blockedConn{c, id})
			}
		}
		if err == nil && l.ctx.Err() == nil {
			items, err = l.pop(dc, key)
		}
		if err != nil {
			drop()
			if l.ctx.Err() != nil {
				return
			}
			l.st.loopErrors.Add(1)
			if backoff == 0 {
				l.log.Warn("redislayer: receive loop failed; retrying", "key", key, "err", err)
				backoff = 50 * time.Millisecond
			} else {
				backoff = min(2*backoff, l.cfg.MaxBackoff)
			}
			select {
			case <-time.After(backoff):
			case <-l.ctx.Done():
				return
			}
			continue
		}
		if backoff != 0 {
			backoff = 0
			l.st.reconnects.Add(1)
			l.log.Info("redislayer: receive loop resumed", "key", key)
		}
		if len(items) > 0 {
			l.dispatch(items)
			if l.cfg.ReceiveLinger > 0 && len(items) < l.cfg.ReceiveBatch {
				select { // let the next messages gather, to be popped and written together
				case <-time.After(l.cfg.ReceiveLinger):
				case <-l.ctx.Done():
					return
				}
			}
		}
	}
}

// blockedConn is a receive loop's connection, for CLIENT UNBLOCK at Close.
type blockedConn struct {
	client rueidis.Client
	id     int64
}

// unblockLoops wakes the receive loops blocked in BZPOPMIN, so Close needs not wait PollTimeout.
func (l *Layer) unblockLoops() {
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	l.blocked.Range(func(_, v any) bool {
		b := v.(blockedConn)
		_ = b.client.Do(ctx, b.client.B().ClientUnblock().ClientId(b.id).Build()).Error()
		return true
	})
}

// doer is what pop needs of a client: a rueidis.Client or a DedicatedClient.
type doer interface {
	B() rueidis.Builder
	Do(ctx context.Context, cmd rueidis.Completed) rueidis.RedisResult
}

// pop waits up to PollTimeout for messages of key and takes up to ReceiveBatch of them in one round
// trip (BZMPOP, Redis 7). On an older Redis it falls back to BZPOPMIN for the first message and
// ZPOPMIN for the rest.
func (l *Layer) pop(c doer, key string) ([]rueidis.ZScore, error) {
	ctx, cancel := context.WithTimeout(l.ctx, l.cfg.PollTimeout+l.cfg.CallTimeout)
	defer cancel()
	if !l.noBzmpop.Load() {
		items, err := bzmpop(ctx, c, key, l.cfg.PollTimeout, l.cfg.ReceiveBatch)
		if !isUnknownCommand(err) {
			return items, err
		}
		l.noBzmpop.Store(true)
	}
	first, ok, err := bzpopmin(ctx, c, key, l.cfg.PollTimeout)
	if err != nil || !ok {
		return nil, err
	}
	items := []rueidis.ZScore{first}
	if l.cfg.ReceiveBatch > 1 {
		more, err := c.Do(ctx, c.B().Zpopmin().Key(key).Count(int64(l.cfg.ReceiveBatch-1)).Build()).AsZScores()
		if err != nil {
			// The first message is in hand: deliver it, and let the next round report the error.
			return items, nil
		}
		items = append(items, more...)
	}
	return items, nil
}

// bzmpop pops up to count of the oldest members of key, waiting up to timeout for the first.
func bzmpop(ctx context.Context, c doer, key string, timeout time.Duration, count int) ([]rueidis.ZScore, error) {
	arr, err := c.Do(ctx, c.B().Bzmpop().Timeout(timeout.Seconds()).Numkeys(1).Key(key).Min().Count(int64(count)).Build()).ToArray()
	if rueidis.IsRedisNil(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if len(arr) != 2 {
		return nil, fmt.Errorf("redislayer: BZMPOP replied with %d elements", len(arr))
	}
	return arr[1].AsZScores()
}

func isUnknownCommand(err error) bool {
	var re *rueidis.RedisError
	return errors.As(err, &re) && strings.Contains(strings.ToLower(re.Error()), "unknown command")
}

// bzpopmin pops the oldest member of key, waiting up to timeout. ok is false on timeout.
func bzpopmin(ctx context.Context, c doer, key string, timeout time.Duration) (rueidis.ZScore, bool, error) {
	arr, err := c.Do(ctx, c.B().Bzpopmin().Key(key).Timeout(timeout.Seconds()).Build()).ToArray()
	if rueidis.IsRedisNil(err) {
		return rueidis.ZScore{}, false, nil
	}
	if err != nil {
		return rueidis.ZScore{}, false, err
	}
	if len(arr) != 3 {
		return rueidis.ZScore{}, false, fmt.Errorf("redislayer: BZPOPMIN replied with %d elements", len(arr))
	}
	member, err := arr[1].ToString()
	if err != nil {
		return rueidis.ZScore{}, false, err
	}
	sc, err := arr[2].AsFloat64()
	if err != nil {
		return rueidis.ZScore{}, false, err
	}
	return rueidis.ZScore{Member: member, Score: sc}, true, nil
}

// routed is a popped message ready for its local recipients.
type routed struct {
	env      *ginws.Envelope
	channels []string
}

// dispatch decodes a popped batch — each message once — and delivers it to the local recipients:
// the same Envelope to every subscriber of a message, so that they share one decode and one JSON
// encoding. A channel's messages of the batch are handed over back to back, in order, so that its
// connection can write them with one system call.
func (l *Layer) dispatch(items []rueidis.ZScore) {
	now := time.Now()
	batch := make([]routed, 0, len(items))
	for _, it := range items {
		if r, ok := l.decodeItem(it, now); ok {
			batch = append(batch, r)
		}
	}
	if len(batch) == 0 {
		return
	}
	// Channels in order of first appearance, with the indexes of their messages.
	var order []string
	var perCh map[string][]int
	if len(batch) == 1 {
		order = batch[0].channels
	} else {
		perCh = make(map[string][]int)
		for i, r := range batch {
			for _, ch := range r.channels {
				if _, ok := perCh[ch]; !ok {
					order = append(order, ch)
				}
				perCh[ch] = append(perCh[ch], i)
			}
		}
	}
	msgsOf := func(ch string) []int {
		if perCh == nil {
			return []int{0}
		}
		return perCh[ch]
	}
	var rest []string
	l.mu.RLock()
	for _, ch := range order {
		sub := l.subs[ch]
		if sub == nil {
			rest = append(rest, ch)
			continue
		}
		for _, i := range msgsOf(ch) {
			if sub.deliver(batch[i].env) != nil {
				l.st.dropped.Add(1)
			} else {
				l.st.delivered.Add(1)
			}
		}
	}
	sweep := len(l.bufs)+l.gone.len() > 0 && !now.Before(l.local.sweep)
	l.mu.RUnlock()
	if len(rest) == 0 && !sweep {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	expires := now.Add(l.cfg.Expiry)
	for _, ch := range rest {
		for _, i := range msgsOf(ch) {
			l.buffer(ch, batch[i].env, now, expires)
		}
	}
	if !now.Before(l.local.sweep) {
		l.sweepBuffers(now)
	}
}

// decodeItem decodes one popped member of a process-local key, counting expired and bad ones.
func (l *Layer) decodeItem(it rueidis.ZScore, now time.Time) (routed, bool) {
	l.st.received.Add(1)
	if l.expiredScore(it.Score, now) {
		l.st.expired.Add(1)
		return routed{}, false
	}
	d, err := decodeMember([]byte(it.Member))
	if err != nil {
		l.st.bad.Add(1)
		l.log.Warn("redislayer: skipping an undecodable message", "err", err)
		return routed{}, false
	}
	if len(d.channels) == 0 {
		l.st.bad.Add(1)
		l.log.Warn("redislayer: skipping a message without \"__asgi_channel__\" on a process-local key")
		return routed{}, false
	}
	return routed{env: ginws.NewEnvelope(d.msg), channels: d.channels}, true
}

// buffer hands env to channel's subscriber if one arrived meanwhile, or queues it for Receive,
// unless the channel's subscriber has left. Callers hold l.mu.
func (l *Layer) buffer(ch string, env *ginws.Envelope, now, expires time.Time) {
	if sub := l.subs[ch]; sub != nil {
		l.deliverOne(sub, env, now, expires)
		return
	}
	if l.gone.has(ch) {
		return
	}
	b := l.bufs[ch]
	if b == nil {
		b = &localBuf{}
		l.bufs[ch] = b
	}
	if len(b.msgs) >= l.Capacity(ch) {
		b.msgs[0] = bufMsg{}
		b.msgs = b.msgs[1:]
		l.st.dropped.Add(1)
	}
	b.msgs = append(b.msgs, bufMsg{msg: env.Message, expires: expires})
	if b.ready != nil {
		close(b.ready)
		b.ready = nil
	}
}

// sweepBuffers drops expired buffered messages and empty buffers, and forgets channels
// unsubscribed longer than GroupExpiry ago, at most once a second, so that channels nobody receives
// any more do not keep memory. Callers hold l.mu.
func (l *Layer) sweepBuffers(now time.Time) {
	l.local.sweep = now.Add(time.Second)
	for name, b := range l.bufs {
		n := 0
		for n < len(b.msgs) && !now.Before(b.msgs[n].expires) {
			b.msgs[n] = bufMsg{}
			n++
		}
		l.st.expired.Add(uint64(n))
		b.msgs = b.msgs[n:]
		if len(b.msgs) == 0 && b.waiters == 0 {
			delete(l.bufs, name)
		}
	}
	l.gone.expire(now, l.cfg.GroupExpiry)
}

// expiredScore applies channels_redis' expiry rule, score < int(now) - expiry, to a popped message.
func (l *Layer) expiredScore(sc float64, now time.Time) bool {
	return sc < float64(now.Unix()-l.expirySec)
}

// enter registers a normal-channel receive that Close must wait for, unless the layer is closed.
func (l *Layer) enter() bool {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.closed.Load() {
		return false
	}
	l.inflight.Add(1)
	return true
}

// multiShardWait bounds one blocking pop of a normal channel when there are several shards, so that
// a message that a round-robin sender put on another shard is seen soon.
const multiShardWait = 100 * time.Millisecond

// receiveDirect receives from a normal channel's own key. Senders (this layer and channels_redis)
// spread a normal channel's messages round-robin over the shards, so with several shards Receive
// takes the oldest of the shards' heads, and blocks on one shard at a time (round-robin, up to
// multiShardWait each) when all are empty.
//
// No message is lost in flight: every pop runs to its own end even when ctx ends (a message popped
// after ctx ended is put back with its score and expiry), and Close waits for the receive to finish,
// waking its blocking pop with CLIENT UNBLOCK.
func (l *Layer) receiveDirect(ctx context.Context, channel string) (ginws.Message, error) {
	if !l.enter() {
		return nil, ginws.ErrLayerClosed
	}
	defer l.inflight.Done()
	key := l.cfg.Prefix + channel
	conns := make([]blockConn, len(l.shards))
	defer func() {
		for _, bc := range conns {
			bc.release(l)
		}
	}()
	next := consistentHash(channel, len(l.shards))
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if l.closed.Load() {
			return nil, ginws.ErrLayerClosed
		}
		m, ok, err := l.popOldest(ctx, key)
		if err != nil || ok {
			return m, err
		}
		i := next
		next = (next + 1) % len(l.shards)
		wait := l.cfg.PollTimeout
		if len(l.shards) > 1 {
			wait = min(wait, multiShardWait)
		}
		if dl, ok := ctx.Deadline(); ok {
			wait = min(wait, time.Until(dl))
		}
		wait = max(wait, 10*time.Millisecond)
		z, ok, err := conns[i].pop(ctx, l, l.shards[i], key, wait)
		if err != nil {
			if l.closed.Load() {
				return nil, ginws.ErrLayerClosed
			}
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			return nil, fmt.Errorf("redislayer: receive from %q: %w", channel, err)
		}
		if !ok {
			continue
		}
		if err := ctx.Err(); err != nil || l.closed.Load() {
			l.putBack(l.shards[i], key, z)
			if err == nil {
				err = ginws.ErrLayerClosed
			}
			return nil, err
		}
		if len(l.shards) > 1 && l.olderElsewhere(ctx, i, key, z.Score) {
			// A message that is older waits on another shard: take that one first.
			l.putBack(l.shards[i], key, z)
			continue
		}
		if m, ok := l.accept(z); ok {
			return m, nil
		}
	}
}

// blockConn is a dedicated connection a normal-channel Receive blocks on, registered for CLIENT
// UNBLOCK so that Close and the end of the Receive's context wake it at once.
type blockConn struct {
	dc   rueidis.DedicatedClient
	done func()
}

func (bc *blockConn) release(l *Layer) {
	if bc.dc != nil {
		l.blocked.Delete(bc.dc)
		bc.done()
		bc.dc = nil
	}
}

// pop waits up to wait for the oldest member of key. The pop itself is not bound to ctx (a reply
// in flight is never dropped), but the end of ctx wakes it.
func (bc *blockConn) pop(ctx context.Context, l *Layer, c rueidis.Client, key string, wait time.Duration) (rueidis.ZScore, bool, error) {
	pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), wait+l.cfg.CallTimeout)
	defer cancel()
	var id int64
	if bc.dc == nil {
		bc.dc, bc.done = c.Dedicate()
		var err error
		if id, err = bc.dc.Do(pctx, bc.dc.B().ClientId().Build()).AsInt64(); err != nil {
			bc.release(l)
			return rueidis.ZScore{}, false, err
		}
		l.blocked.Store(bc.dc, blockedConn{c, id})
	} else if v, ok := l.blocked.Load(bc.dc); ok {
		id = v.(blockedConn).id
	}
	if l.closed.Load() { // Close may have passed its last CLIENT UNBLOCK before the Store
		return rueidis.ZScore{}, false, nil
	}
	stop := context.AfterFunc(ctx, func() {
		uctx, ucancel := context.WithTimeout(context.Background(), l.cfg.CallTimeout)
		defer ucancel()
		_ = c.Do(uctx, c.B().ClientUnblock().ClientId(id).Build()).Error()
	})
	defer stop()
	z, ok, err := bzpopmin(pctx, bc.dc, key, wait)
	if err != nil {
		bc.release(l)
	}
	return z, ok, err
}

// popOldest pops, without blocking, the oldest message of a normal channel: on its single shard,
// or on the shard whose head is oldest. Between looking at the heads and popping, another receiver
// may take that head, or a sender add an older one elsewhere; order across shards is by send time
// only among the messages queued when Receive looks.
func (l *Layer) popOldest(ctx context.Context, key string) (ginws.Message, bool, error) {
	if len(l.shards) == 1 {
		return l.popNow(ctx, l.shards[0], key)
	}
	for {
		best, bestScore := -1, 0.0
		for i, c := range l.shards {
			sc, ok, err := l.head(ctx, c, key)
			if err != nil {
				return nil, false, err
			}
			if ok && (best < 0 || sc < bestScore) {
				best, bestScore = i, sc
			}
		}
		if best < 0 {
			return nil, false, nil
		}
		m, ok, err := l.popNow(ctx, l.shards[best], key)
		if err != nil || ok {
			return m, ok, err
		}
		// Raced with another receiver, or only expired members: look again.
	}
}

// head returns the score of the oldest message of key, after restoring a channels_redis
// "$inflight" backup.
func (l *Layer) head(ctx context.Context, c rueidis.Client, key string) (float64, bool, error) {
	if err := ctx.Err(); err != nil {
		return 0, false, err
	}
	// Not bound to ctx, like popNow: the script may restore a backup, whose reply must not be lost.
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), l.cfg.CallTimeout)
	defer cancel()
	zs, err := headScript.Exec(cctx, c, []string{key, key + "$inflight"}, nil).AsZScores()
	if err != nil && !rueidis.IsRedisNil(err) {
		return 0, false, l.callError(fmt.Sprintf("receive from %q", key), err)
	}
	if len(zs) == 0 {
		return 0, false, nil
	}
	return zs[0].Score, true, nil
}

// olderElsewhere reports whether a shard other than i holds a message of key older than sc.
func (l *Layer) olderElsewhere(ctx context.Context, i int, key string, sc float64) bool {
	for j, c := range l.shards {
		if j == i {
			continue
		}
		if h, ok, err := l.head(context.WithoutCancel(ctx), c, key); err == nil && ok && h < sc {
			return true
		}
	}
	return false
}

// popNow pops one message of key without blocking, after restoring a channels_redis "$inflight"
// backup. Expired and undecodable members are skipped. The script runs to its end even when ctx
// ends meanwhile (so that a popped message is not lost in flight); the message is then put back.
func (l *Layer) popNow(ctx context.Context, c rueidis.Client, key string) (ginws.Message, bool, error) {
	for {
		if err := ctx.Err(); err != nil {
			return nil, false, err
		}
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), l.cfg.CallTimeout)
		zs, err := popScript.Exec(cctx, c, []string{key, key + "$inflight"}, nil).AsZScores()
		cancel()
		if err != nil && !rueidis.IsRedisNil(err) {
			return nil, false, l.callError(fmt.Sprintf("receive from %q", key), err)
		}
		if len(zs) == 0 {
			return nil, false, nil
		}
		if err := ctx.Err(); err != nil {
			l.putBack(c, key, zs[0])
			return nil, false, err
		}
		if m, ok := l.accept(zs[0]); ok {
			return m, true, nil
		}
	}
}

// accept decodes a member popped from a normal channel, counting expired and bad ones.
func (l *Layer) accept(z rueidis.ZScore) (ginws.Message, bool) {
	l.st.received.Add(1)
	if l.expiredScore(z.Score, time.Now()) {
		l.st.expired.Add(1)
		return nil, false
	}
	d, err := decodeMember([]byte(z.Member))
	if err != nil {
		l.st.bad.Add(1)
		l.log.Warn("redislayer: skipping an undecodable message", "err", err)
		return nil, false
	}
	l.st.delivered.Add(1)
	return d.msg, true
}

// putBack returns a message popped for a Receive whose context ended meanwhile, with its score, so
// it keeps its place at the head of the queue, and gives the key its expiry again (popping the last
// member deleted the key, and a bare ZADD would re-create it without one).
func (l *Layer) putBack(c rueidis.Client, key string, z rueidis.ZScore) {
	ctx, cancel := context.WithTimeout(context.Background(), l.cfg.CallTimeout)
	defer cancel()
	err := putBackScript.Exec(ctx, c, []string{key}, []string{
		strconv.FormatFloat(z.Score, 'f', -1, 64), z.Member, strconv.FormatInt(l.expirySec, 10),
	}).Error()
	if err != nil {
		l.log.Warn("redislayer: could not put back a message after a canceled receive; it is lost", "key", key, "err", err)
	}
}
