package ginws

import (
	"sync/atomic"
	"time"
)

// pumpWorkers runs connections' pumps on goroutines that outlive one burst. Starting a goroutine
// for every burst of every connection (a group send kicks every member's pump at once) costs its
// creation and, as the handlers deepen the new stack, its growth; a worker that has just finished
// a pump instead waits a little for the next one. Idle workers give up after pumpIdleTimeout, so an
// idle server keeps none; at most pumpMaxIdle wait at a time.
//
// A worker runs one connection's pump at a time, exactly as a goroutine of its own would (the
// pump's handlers may block; other connections' pumps run on other workers).
type pumpWorkers struct {
	work chan *Conn   // unbuffered: a send succeeds only when a worker is waiting
	idle atomic.Int32 // workers waiting on work
}

const (
	pumpIdleTimeout = 250 * time.Millisecond
	pumpMaxIdle     = 4096
)

func newPumpWorkers() *pumpWorkers { return &pumpWorkers{work: make(chan *Conn)} }

// start runs c's pump on a waiting worker, or on a new one. It never blocks: callers hold c.mu.
func (p *pumpWorkers) start(c *Conn) {
	select {
	case p.work <- c:
	default:
		go p.run(c)
	}
}

// run is a worker: it runs c's pump, then waits for another connection's. Its idle timer is
// re-armed lazily — only when less than half of pumpIdleTimeout is left — which spares a timer
// update per burst: an idle worker exits between half of pumpIdleTimeout and all of it after its
// last pump.
func (p *pumpWorkers) run(c *Conn) {
	t := time.NewTimer(pumpIdleTimeout)
	deadline := monoNow() + int64(pumpIdleTimeout)
	for {
		c.runPump()
		if p.idle.Add(1) > pumpMaxIdle {
			p.idle.Add(-1)
			t.Stop()
			return
		}
		if now := monoNow(); deadline-now < int64(pumpIdleTimeout)/2 {
			t.Reset(pumpIdleTimeout)
			deadline = now + int64(pumpIdleTimeout)
		}
		select {
		case c = <-p.work:
			p.idle.Add(-1)
		case <-t.C:
			p.idle.Add(-1)
			return
		}
	}
}
