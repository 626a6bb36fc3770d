package redislayer

import (
	"math/bits"
	"sync/atomic"
	"time"

	"ginws.dev/ginws/layer"
)

// CallStats is the latency histogram of one kind of layer call, from its first Redis command to
// its last reply (calls refused before reaching Redis are not counted).
type CallStats struct {
	Count  uint64        // calls timed
	Sum    time.Duration // their total duration
	Errors uint64        // those that failed (Redis unreachable, timeouts, script errors...)
	// Buckets maps each upper bound, in seconds, to the calls that took at most that long: the
	// cumulative counts of a Prometheus histogram. The bounds are 100µs doubling up to 3.2768 s;
	// Count includes the slower calls.
	Buckets map[float64]uint64
}

// callOp is a kind of layer call that is timed.
type callOp int

const (
	opSend callOp = iota
	opGroupSend
	opGroupAdd
	opGroupDiscard
	opReceive  // a pop by Receive on a normal channel (not the receive loops' blocking pops)
	opPresence // a script call applying coalesced PresenceAdd and PresenceDiscard calls (presence_batch.go)
	numCallOps
)

// callOpNames are the keys of Stats.Calls.
var callOpNames = [numCallOps]string{"send", "group_send", "group_add", "group_discard", "receive", "presence"}

const (
	callBucketBase = 100 * time.Microsecond
	callBuckets    = 16 // bounds callBucketBase<<0 ... callBucketBase<<15; one more slot for slower calls
)

// callHist is a lock-free latency histogram: a call costs three atomic adds. Written by any
// goroutine making the call; read by Stats. A snapshot taken while calls complete may count a
// call in Count (the sum of the slots) but not yet in Sum; Prometheus tolerates that.
type callHist struct {
	slots  [callBuckets + 1]atomic.Uint64 // slot i: calls in (base<<(i-1), base<<i]; the last: slower
	nanos  atomic.Uint64
	errors atomic.Uint64
}

// observe records a call of op that started at start and ended now with *err (a full channel is
// not an error of the call). Calls defer it with the address of their named result.
func (l *Layer) observe(op callOp, start time.Time, err *error) {
	d := time.Since(start)
	h := &l.st.calls[op]
	h.slots[callSlot(d)].Add(1)
	if d > 0 {
		h.nanos.Add(uint64(d))
	}
	if *err != nil && *err != layer.ErrChannelFull {
		h.errors.Add(1)
	}
}

// callSlot returns the histogram slot of a call that lasted d: the first bound base<<i ≥ d.
func callSlot(d time.Duration) int {
	if d <= callBucketBase {
		return 0
	}
	n := uint64((d - 1) / callBucketBase) // ≥ 1; bound base<<i ≥ d ⇔ 1<<i > n
	return min(bits.Len64(n), callBuckets)
}

func (h *callHist) snapshot() CallStats {
	cs := CallStats{Sum: time.Duration(h.nanos.Load()), Errors: h.errors.Load(), Buckets: make(map[float64]uint64, callBuckets)}
	for i := range h.slots {
		cs.Count += h.slots[i].Load()
		if i < callBuckets {
			cs.Buckets[(callBucketBase << i).Seconds()] = cs.Count
		}
	}
	return cs
}
