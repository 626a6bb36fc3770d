package redislayer

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/rueidis"
)

// errLate is popLate's error when the reply did not come within its wait.
var errLate = fmt.Errorf("redislayer: no reply in time (what Redis pops later is put back): %w", context.DeadlineExceeded)

// popLate runs pop, a call that takes messages out of key, and waits up to wait for its reply. The
// call itself has no deadline: Redis may run it after its caller gave up (after a pause, say), and
// what it popped is then only in its reply. So when the reply is late popLate returns errLate
// (which wraps context.DeadlineExceeded), and the goroutine that waits for the reply puts back what it popped,
// with its score (see putBack). That goroutine ends when Redis answers or the connection fails
// (rueidis' keepalive PING, ConnWriteTimeout). The caller must hold l.inflight (a Receive does),
// so that Close waits for that goroutine: a Close while Redis is paused waits for it. late, if not
// nil, runs on that goroutine after the put back (to release a dedicated connection the late pop
// used); the caller must then leave that connection alone (popLate returned errLate).
func (l *Layer) popLate(c rueidis.Client, key string, wait time.Duration, pop func(context.Context) ([]rueidis.ZScore, error), late func()) ([]rueidis.ZScore, error) {
	type result struct {
		zs  []rueidis.ZScore
		err error
	}
	res := make(chan result) // unbuffered: a reply is taken by the caller, or else put back
	gaveUp := make(chan struct{})
	l.inflight.Add(1)
	go func() {
		defer l.inflight.Done()
		zs, err := pop(context.Background())
		select {
		case res <- result{zs, err}:
		case <-gaveUp:
			for _, z := range zs {
				l.putBack(c, key, z)
			}
			if late != nil {
				late()
			}
		}
	}()
	timer := time.NewTimer(wait)
	defer timer.Stop()
	select {
	case r := <-res:
		return r.zs, r.err
	case <-timer.C:
		close(gaveUp)
		return nil, errLate
	}
}
