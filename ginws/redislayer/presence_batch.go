package redislayer

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"

	"ginws.dev/ginws/layer"
)

// Coalescing presence writes. PresenceAdd and PresenceDiscard do not each run a script: they queue
// their operation for the group's shard, and one goroutine per shard applies what is queued in one
// call (presenceApplyScript), in the order it was queued, then waits until PresenceLinger has
// passed since that call began before it applies what gathered meanwhile. A lone operation goes at
// once; under a join/leave storm a shard gets at most one presence call per PresenceLinger from
// this process (and the changes of a call are announced together, see announce), which is what
// keeps a storm cheap for Redis. Every caller still waits for its own operation's outcome.

// presenceOp is one queued track (t set) or untrack (t nil) of channel in group.
type presenceOp struct {
	group, channel string
	t              *tracked
	done           chan error // buffered: the applier never blocks on a caller that gave up
}

// presenceBatcher queues the operations of each shard. Guarded by mu, which is never held during
// a Redis call or while announcing; Layer.mu's read lock may be taken under it, never the reverse.
type presenceBatcher struct {
	mu      sync.Mutex
	pending [][]*presenceOp // per shard, in arrival order
	busy    []bool          // per shard: an applier goroutine is running
}

func newPresenceBatcher(shards int) presenceBatcher {
	return presenceBatcher{pending: make([][]*presenceOp, shards), busy: make([]bool, shards)}
}

// maxPresenceBatch bounds the operations of one script call, so that a call stays short.
const maxPresenceBatch = 500

// presenceDo queues op on its group's shard and waits for it to be applied, or for ctx to end (the
// operation may then still be applied).
func (l *Layer) presenceDo(ctx context.Context, op *presenceOp) error {
	op.done = make(chan error, 1)
	i := consistentHash(op.group, len(l.shards))
	b := &l.batcher
	b.mu.Lock()
	b.pending[i] = append(b.pending[i], op)
	start := !b.busy[i]
	if start {
		// Added under l.mu's read lock, which Close takes after setting closed, so that the
		// applier is counted before Close waits for l.wg.
		l.mu.RLock()
		if l.closed.Load() {
			l.mu.RUnlock()
			b.pending[i] = b.pending[i][:len(b.pending[i])-1]
			b.mu.Unlock()
			return layer.ErrClosed
		}
		l.wg.Add(1)
		l.mu.RUnlock()
		b.busy[i] = true
	}
	b.mu.Unlock()
	if start {
		go l.applyPresence(i)
	}
	select {
	case err := <-op.done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// applyPresence applies shard i's queued operations until none is left after a linger.
func (l *Layer) applyPresence(i int) {
	defer l.wg.Done()
	b := &l.batcher
	for {
		b.mu.Lock()
		ops := b.pending[i]
		if len(ops) > maxPresenceBatch {
			ops = ops[:maxPresenceBatch:maxPresenceBatch]
			b.pending[i] = b.pending[i][maxPresenceBatch:]
		} else {
			b.pending[i] = nil
		}
		if len(ops) == 0 {
			b.busy[i] = false
			b.mu.Unlock()
			return
		}
		b.mu.Unlock()
		began := time.Now()
		evs, err := l.applyBatch(i, ops)
		l.announce(evs) // before the callers return: a change is announced when its call returns
		for _, op := range ops {
			if op.t != nil {
				op.t.pending.Store(false)
			}
			op.done <- err
		}
		select { // let the next operations gather
		case <-time.After(time.Until(began.Add(l.cfg.PresenceLinger))):
		case <-l.ctx.Done():
		}
	}
}

// applyBatch runs ops on shard i in one script call and returns the joins and leaves it made, in
// order.
func (l *Layer) applyBatch(i int, ops []*presenceOp) ([]presenceEvent, error) {
	ctx, cancel, err := l.call(l.ctx)
	if err != nil {
		return nil, err
	}
	defer cancel()
	groupNum := make(map[string]int)
	var groups []string
	var keys []string
	args := make([]string, 0, 2+5*len(ops))
	args = append(args, l.entryMS(), l.keysMS())
	for _, op := range ops {
		g, ok := groupNum[op.group]
		if !ok {
			groups = append(groups, op.group)
			g = len(groups)
			groupNum[op.group] = g
			keys = append(keys, l.presenceKeys(op.group)...)
		}
		if op.t != nil {
			args = append(args, strconv.Itoa(g), "t", op.channel, op.t.user, op.t.value)
		} else {
			args = append(args, strconv.Itoa(g), "d", op.channel, "", "")
		}
	}
	start := time.Now()
	res, err := presenceApplyScript.Exec(ctx, l.shards[i], keys, args).ToArray()
	l.observe(opPresence, start, &err)
	if err == nil && len(res)%4 != 0 {
		err = fmt.Errorf("presence script answered %d values", len(res))
	}
	if err != nil {
		return nil, err
	}
	evs := make([]presenceEvent, 0, len(res)/4)
	for k := 0; k+3 < len(res); k += 4 {
		g, err1 := res[k].AsInt64()
		kind, err2 := res[k+1].ToString()
		user, err3 := res[k+2].ToString()
		n, err4 := res[k+3].AsInt64()
		if err1 != nil || err2 != nil || err3 != nil || err4 != nil || g < 1 || int(g) > len(groups) {
			continue
		}
		e := presenceEvent{group: groups[g-1], user: user}
		if kind == "j" {
			e.join = true
			if n >= 1 && int(n) <= len(ops) && ops[n-1].t != nil {
				e.info = decodeInfo(ops[n-1].t.value)
			}
		}
		evs = append(evs, e)
	}
	return evs, nil
}
