package ginws

import "sync"

// connState is where a connection is in its life. It changes only through Conn.toLocked, under
// c.mu, and can be read without the lock (Conn.stateNow) where a stale answer is harmless — the
// pump skipping the client frames of a connection that is closing, say.
//
//		handshake ──► open ──► closing ──► ended ──► closed
//		    │           │                    ▲         ▲
//		    │           └──► peerEnded ──────┘         │
//		    └──► refused, refusedShutdown ─────────────┘
//
//	  - handshake: Connect runs; nothing is sent; a Close refuses with 403 (refused), a shutdown
//	    with 503 (refusedShutdown).
//	  - open: accepted; client frames and layer events are handled, sends are queued.
//	  - closing: the server decided to end the connection — its close frame is queued or sent, or
//	    the socket was cut — and waits for the reader to finish; client frames and events are
//	    ignored, sends refused.
//	  - peerEnded: the reader finished first (the client's close frame, the end of its stream, a dead
//	    peer): the client's earlier messages are still handled and their replies sent, then the
//	    answer to its close; layer events are dropped.
//	  - ended: the reader finished after the server closed, or finish has begun after the peer
//	    ended (the answer to its close is queued last); nothing more is handled or queued.
//	  - closed: finish ran (or a refused handshake was undone): groups left, Disconnect called.
type connState uint32

const (
	stateHandshake connState = iota
	stateRefused
	stateRefusedShutdown
	stateOpen
	stateClosing
	statePeerEnded
	stateEnded
	stateClosed
)

var stateNames = [...]string{"handshake", "refused", "refused (shutdown)", "open", "closing", "peer ended", "ended", "closed"}

func (s connState) String() string { return stateNames[s] }

// transitions lists, for each state, the states it may move to.
var transitions = [...][]connState{
	stateHandshake:       {stateOpen, stateRefused, stateRefusedShutdown},
	stateRefused:         {stateClosed, stateOpen}, // open: Accept's 101 was already on its way
	stateRefusedShutdown: {stateClosed, stateOpen},
	stateOpen:            {stateClosing, statePeerEnded},
	stateClosing:         {stateEnded},
	statePeerEnded:       {stateEnded}, // finish moves it on before it writes the answer to the close
	stateEnded:           {stateClosed},
	stateClosed:          nil,
}

// toLocked moves the connection to state next and reports whether the move is one the state
// machine allows (otherwise nothing changes: callers check where they are first, so a refused move
// is a runtime bug, which the tests catch through Server.badTransitions). Callers hold c.mu.
func (c *Conn) toLocked(next connState) bool {
	cur := c.stateNow()
	for _, s := range transitions[cur] {
		if s == next {
			c.state.Store(uint32(next))
			c.broadcast() // readers and pollers waiting for room also wait for the end
			return true
		}
	}
	c.srv.badTransitions.Add(1)
	return false
}

// stateNow returns the connection's state; without c.mu it may be stale by the time it is used.
func (c *Conn) stateNow() connState { return connState(c.state.Load()) }

// pumpState says what the pump — the goroutine that runs handlers and writes — is doing. Guarded by
// c.mu.
type pumpState uint8

const (
	pumpHeld    pumpState = iota // until Connect has returned: frames queued meanwhile wait
	pumpIdle                     // no pump goroutine; kick starts one
	pumpRunning                  // a pump goroutine runs handlers or takes output
	pumpWriting                  // it is writing to the socket, outside the lock (since writeStart)
	pumpDone                     // finish ran: no pump ever starts again
)

// kick starts the pump if it is idle. Callers hold c.mu.
func (c *Conn) kick() {
	if c.pump == pumpIdle {
		c.pump = pumpRunning
		c.srv.pumps.start(c)
	}
}

// wait blocks on the connection's condition variable: the reader waiting for the consumer to
// catch up (pushFrame) or for a stuck pong to be written (pong), a polling listener waiting for room
// (waitForRoom). Callers hold c.mu.
func (c *Conn) wait() {
	if c.cond == nil {
		c.cond = sync.NewCond(&c.mu)
	}
	c.cond.Wait()
}

// broadcast wakes the waiters. Callers hold c.mu.
func (c *Conn) broadcast() {
	if c.cond != nil {
		c.cond.Broadcast()
	}
}
