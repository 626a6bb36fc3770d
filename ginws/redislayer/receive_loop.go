package redislayer

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync/atomic"
	"time"

	"github.com/redis/rueidis"

	"ginws.dev/ginws/layer"
)

// startLoops starts the receive loops of a process-local key, one per shard, once. Watching the
// key on every shard (not only the one its name hashes to) also catches messages that a
// channels_redis sender put on the shard of the full channel name. Callers hold l.mu.
func (l *Layer) startLoops(keyName string) {
	if l.loops[keyName] || l.closed.Load() {
		return
	}
	l.loops[keyName] = true
	for i := range l.shards {
		lag := new(atomic.Int64)
		l.lags = append(l.lags, lag)
		l.wg.Add(1)
		go l.loop(i, l.cfg.Prefix+keyName, lag)
	}
}

// loop pops key on shard i until Close, delivering what it pops. It blocks on a dedicated
// connection whose Redis client ID it registers, so that Close can end the wait at once with
// CLIENT UNBLOCK. When Redis fails it marks the shard degraded, logs, waits (50 ms, doubling up to
// MaxBackoff, or until the keeper has restored the shard) and tries again on a new connection; it
// pops again only once the keeper has re-added this process's memberships on the shard, so that
// deliveries resume with the groups whole.
//
// A pop is never abandoned while its connection lives: Redis may run it late (after a pause, a
// stall, a long script) and the messages it pops are then only in its reply. A pop without a reply
// within PollTimeout+CallTimeout marks the shard degraded (see watchPop) and is waited for; it
// ends with its reply, when the connection breaks (a dead Redis closes it, a vanished host fails
// TCP keepalive), or at Close.
//
// The loop stores its lag (see Stats.ReceiveLag) in lag after each pop.
func (l *Layer) loop(i int, key string, lag *atomic.Int64) {
	defer l.wg.Done()
	c := l.shards[i]
	var (
		dc      rueidis.DedicatedClient
		release func()
		backoff time.Duration
		scratch dispatchScratch
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
		callStart := time.Now() // when this round's calls started: a failed CLIENT ID is dated from here
		if dc == nil {
			dc, release = c.Dedicate()
			var id int64
			if id, err = dc.Do(l.ctx, dc.B().ClientId().Build()).AsInt64(); err == nil {
				l.blocked.Store(dc, blockedConn{c, id})
				select { // deliveries resume once the memberships are back
				case <-l.health[i].syncedCh():
				case <-l.ctx.Done():
					return
				}
				callStart = time.Now()
			}
		}
		stalled := false
		if err == nil && l.ctx.Err() == nil {
			stop := l.watchPop(i, key, callStart)
			items, err = l.pop(dc, key)
			stalled = stop()
		}
		if err != nil {
			drop()
			if l.ctx.Err() != nil {
				return
			}
			l.st.loopErrors.Add(1)
			l.degrade(i, err, false, callStart)
			if backoff == 0 {
				l.log.Warn("redislayer: receive loop failed; retrying", "key", key, "err", err)
				backoff = 50 * time.Millisecond
			} else {
				backoff = min(2*backoff, l.cfg.MaxBackoff)
			}
			select {
			case <-time.After(backoff):
			case <-l.health[i].syncedCh(): // the keeper reached Redis and restored the shard
			case <-l.ctx.Done():
				return
			}
			continue
		}
		if backoff != 0 || stalled {
			backoff = 0
			l.st.reconnects.Add(1)
			l.log.Info("redislayer: receive loop resumed", "key", key)
		}
		lag.Store(int64(popLag(items)))
		if len(items) > 0 {
			l.dispatch(items, &scratch)
		}
		if stalled { // the late pop's messages are delivered; pop again with the groups whole
			select {
			case <-l.health[i].syncedCh():
			case <-l.ctx.Done():
				return
			}
			continue
		}
		if len(items) > 0 {
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

// popLag is a receive loop's lag after a pop: the age of the oldest message it popped (the first:
// pops take the lowest scores), or zero when the pop found nothing in PollTimeout.
func popLag(items []rueidis.ZScore) time.Duration {
	if len(items) == 0 {
		return 0
	}
	sent := time.UnixMicro(int64(math.Round(items[0].Score * 1e6)))
	return max(0, time.Since(sent))
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

// errPopStalled is the cause of a degradation by a pop that got no reply in time.
var errPopStalled = errors.New("redislayer: Redis did not answer the receive loop's pop within PollTimeout+CallTimeout")

// watchPop reports shard i degraded (errPopStalled) if the pop of key started at start has not
// returned within PollTimeout+CallTimeout, without ending the pop. The loop calls stop when the pop
// returns; stop reports whether the pop stalled, after the report is done. The report runs on a
// timer goroutine; degrade is safe for that.
func (l *Layer) watchPop(i int, key string, start time.Time) (stop func() bool) {
	done := make(chan struct{})
	t := time.AfterFunc(l.cfg.PollTimeout+l.cfg.CallTimeout, func() {
		defer close(done)
		if l.ctx.Err() != nil {
			return
		}
		l.st.loopErrors.Add(1)
		l.degrade(i, errPopStalled, false, start)
		l.log.Warn("redislayer: receive loop waiting for Redis to answer its pop", "key", key, "waited", time.Since(start).Round(time.Millisecond))
	})
	return func() bool {
		if t.Stop() {
			return false
		}
		<-done
		return true
	}
}

// pop waits up to PollTimeout for messages of key and takes up to ReceiveBatch of them in one round
// trip (BZMPOP, Redis 7). On an older Redis it falls back to BZPOPMIN for the first message and
// ZPOPMIN for the rest.
//
// Its calls have no deadline but Close (l.ctx): a pop whose caller gave up would still run in
// Redis when it gets to it — after a pause, say — and what it popped would be lost with its
// reply. The loop watches for stalls with watchPop instead.
func (l *Layer) pop(c doer, key string) ([]rueidis.ZScore, error) {
	ctx := l.ctx
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
	env      *layer.Envelope
	channels []string
}

// dispatchScratch is what dispatch reuses from one batch to the next, so that handing a batch to
// the local recipients allocates nothing per delivery. One receive loop owns it.
type dispatchScratch struct {
	batch []routed
	order []string                // the batch's channels, in order of first appearance
	lists map[string]chanMessages // channel → its messages in the batch, as a list through links
	links []link
	rest  []string // channels with no subscriber
}

// chanMessages is a channel's list of messages in links: first and last link.
type chanMessages struct{ head, tail int32 }

// link is one message of a channel's list: the message's index in the batch, and the next link
// (-1 at the end).
type link struct{ msg, next int32 }

// reset empties s for the next batch, keeping its memory (but not its references).
func (s *dispatchScratch) reset() {
	clear(s.batch)
	s.batch = s.batch[:0]
	clear(s.order)
	s.order = s.order[:0]
	clear(s.lists)
	s.links = s.links[:0]
	clear(s.rest)
	s.rest = s.rest[:0]
}

// group builds, for each channel of the batch, the list of its messages in batch order.
func (s *dispatchScratch) group() {
	if s.lists == nil {
		s.lists = make(map[string]chanMessages)
	}
	for i, r := range s.batch {
		for _, ch := range r.channels {
			n := int32(len(s.links))
			s.links = append(s.links, link{msg: int32(i), next: -1})
			if cm, ok := s.lists[ch]; ok {
				if s.links[cm.tail].msg == int32(i) {
					s.links = s.links[:n] // a channel named twice in one message gets it once
					continue
				}
				s.links[cm.tail].next = n
				cm.tail = n
				s.lists[ch] = cm
			} else {
				s.lists[ch] = chanMessages{head: n, tail: n}
				s.order = append(s.order, ch)
			}
		}
	}
}

// dispatch decodes a popped batch — each message once — and delivers it to the local recipients:
// the same Envelope to every subscriber of a message, so that they share one decode and one JSON
// encoding. A channel's messages of the batch are handed over back to back, in order, so that its
// connection can write them with one system call.
func (l *Layer) dispatch(items []rueidis.ZScore, s *dispatchScratch) {
	defer s.reset()
	now := time.Now()
	for _, it := range items {
		if r, ok := l.decodeItem(it, now); ok {
			s.batch = expand(s.batch, r)
		}
	}
	if len(s.batch) == 0 {
		return
	}
	s.group()
	l.mu.RLock()
	holding := l.holding.Load() > 0 // joins from a position under way (history.go)
	for _, ch := range s.order {
		sub := l.subs[ch]
		if sub == nil {
			s.rest = append(s.rest, ch)
			continue
		}
		for n := s.lists[ch].head; n >= 0; n = s.links[n].next {
			env := s.batch[s.links[n].msg].env
			if holding && l.held(ch, env) {
				continue
			}
			if sub.deliver(env) != nil {
				l.st.dropped.Add(1)
			} else {
				l.st.delivered.Add(1)
			}
		}
	}
	sweep := len(l.bufs)+l.gone.len() > 0 && !now.Before(l.local.sweep)
	l.mu.RUnlock()
	if len(s.rest) == 0 && !sweep {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	expires := now.Add(l.cfg.Expiry)
	holding = l.holding.Load() > 0
	for _, ch := range s.rest {
		for n := s.lists[ch].head; n >= 0; n = s.links[n].next {
			if env := s.batch[s.links[n].msg].env; !holding || !l.held(ch, env) {
				l.buffer(ch, env, now, expires)
			}
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
	d, err := decodeMember(it.Member)
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
	env := layer.NewEnvelope(d.msg, d.group)
	env.Position = d.pos
	return routed{env: env, channels: d.channels}, true
}

// buffer hands env to channel's subscriber if one arrived meanwhile, or queues it for Receive,
// unless the channel's subscriber has left. Callers hold l.mu.
func (l *Layer) buffer(ch string, env *layer.Envelope, now, expires time.Time) {
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
