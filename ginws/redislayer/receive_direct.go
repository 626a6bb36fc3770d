package redislayer

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/rueidis"

	"ginws.dev/ginws/layer"
)

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
func (l *Layer) receiveDirect(ctx context.Context, channel string) (layer.Message, error) {
	if !l.enter() {
		return nil, layer.ErrClosed
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
			return nil, layer.ErrClosed
		}
		if m, ok := l.expanded.take(key); ok {
			l.st.delivered.Add(1)
			return m, nil
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
				return nil, layer.ErrClosed
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
				err = layer.ErrClosed
			}
			return nil, err
		}
		if len(l.shards) > 1 && l.olderElsewhere(ctx, i, key, z.Score) {
			// A message that is older waits on another shard: take that one first.
			l.putBack(l.shards[i], key, z)
			continue
		}
		if m, ok := l.accept(key, z); ok {
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
// in flight is never dropped), but the end of ctx wakes it; one whose reply is later than
// wait+CallTimeout fails, and what it pops when Redis gets to it is put back (see popLate).
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
	dc, done := bc.dc, bc.done
	zs, err := l.popLate(c, key, wait+l.cfg.CallTimeout, func(pctx context.Context) ([]rueidis.ZScore, error) {
		z, ok, err := bzpopmin(pctx, dc, key, wait)
		if !ok {
			return nil, err
		}
		return []rueidis.ZScore{z}, err
	}, func() {
		l.blocked.Delete(dc)
		done()
	})
	if errors.Is(err, errLate) {
		bc.dc = nil // the late pop's goroutine releases it
		return rueidis.ZScore{}, false, err
	}
	if err != nil {
		bc.release(l)
		return rueidis.ZScore{}, false, err
	}
	if len(zs) == 0 {
		return rueidis.ZScore{}, false, nil
	}
	return zs[0], true, nil
}

// popOldest pops, without blocking, the oldest message of a normal channel: on its single shard,
// or on the shard whose head is oldest. Between looking at the heads and popping, another receiver
// may take that head, or a sender add an older one elsewhere; order across shards is by send time
// only among the messages queued when Receive looks.
func (l *Layer) popOldest(ctx context.Context, key string) (layer.Message, bool, error) {
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
// ends meanwhile (so that a popped message is not lost in flight); the message is then put back,
// as is one whose reply comes after CallTimeout (see popLate).
func (l *Layer) popNow(ctx context.Context, c rueidis.Client, key string) (layer.Message, bool, error) {
	for {
		if err := ctx.Err(); err != nil {
			return nil, false, err
		}
		start := time.Now()
		zs, err := l.popLate(c, key, l.cfg.CallTimeout, func(pctx context.Context) ([]rueidis.ZScore, error) {
			return popScript.Exec(pctx, c, []string{key, key + "$inflight"}, nil).AsZScores()
		}, nil)
		if rueidis.IsRedisNil(err) {
			err = nil
		}
		l.observe(opReceive, start, &err)
		if err != nil {
			return nil, false, l.callError(fmt.Sprintf("receive from %q", key), err)
		}
		if len(zs) == 0 {
			return nil, false, nil
		}
		if err := ctx.Err(); err != nil {
			l.putBack(c, key, zs[0])
			return nil, false, err
		}
		if m, ok := l.accept(key, zs[0]); ok {
			return m, true, nil
		}
	}
}

// accept decodes a member popped from normal-channel key, counting expired and bad ones. Of a batch
// of presence events it returns the first and holds the others for the next receives of key.
func (l *Layer) accept(key string, z rueidis.ZScore) (layer.Message, bool) {
	l.st.received.Add(1)
	if l.expiredScore(z.Score, time.Now()) {
		l.st.expired.Add(1)
		return nil, false
	}
	d, err := decodeMember(z.Member)
	if err != nil {
		l.st.bad.Add(1)
		l.log.Warn("redislayer: skipping an undecodable message", "err", err)
		return nil, false
	}
	if evs, ok := expandPresence(d.msg); ok {
		if len(evs) == 0 {
			return nil, false
		}
		l.expanded.hold(key, evs[1:])
		l.st.delivered.Add(1)
		return evs[0], true
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
