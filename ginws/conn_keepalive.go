package ginws

// Keepalive. The server pings every connection each PingInterval (one timer for all of them, see
// Server.pingLater), and a connection from which nothing arrives for PingInterval+PingTimeout is
// dropped: every frame or pong pushes its read deadline back. Pings from the client are answered.

// ping queues a keepalive ping (Server.pingAll calls it every PingInterval).
func (c *Conn) ping() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stateNow() != stateOpen || c.pump == pumpHeld || c.cut {
		return
	}
	c.out = outPool.push(c.out, outFrame{op: opPing})
	c.outBytes += maxHeaderLen
	c.kick()
}

// pong answers a client's ping. Every ping is answered (the Autobahn suite checks that; RFC 6455
// would allow answering only the latest), pongs count against the outbound budget like any frame,
// and while a pong waits behind a write under way the reader stops reading — a client that floods
// pings and reads nothing is held back by TCP instead of growing the server's memory, and is closed
// as slow when the blocked write times out. Reader goroutine only.
func (c *Conn) pong(payload []byte) {
	f := outFrame{op: opPong, data: append([]byte(nil), payload...)}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stateNow() != stateOpen || c.cut {
		return
	}
	if c.outBytes+f.size() > c.outboundLimit {
		c.slowLocked("outbound queue over OutboundLimit")
		return
	}
	c.out = outPool.push(c.out, f)
	c.outBytes += f.size()
	c.pongQueued = true
	c.kick()
	for c.pongQueued && c.pump == pumpWriting && !c.cut && c.stateNow() == stateOpen {
		c.wait()
	}
}

// extendRead pushes the read deadline (the dead-peer timer) back after a frame or a pong. It is
// refreshed only when less than three quarters of the wait is left, which spares a timer update
// per frame: a silent peer is dropped after between 3/4 and all of PingInterval+PingTimeout.
func (c *Conn) extendRead() {
	wait := int64(c.srv.readWait)
	if wait <= 0 {
		return
	}
	now := monoNow()
	if c.readDeadline-now < wait*3/4 {
		c.readDeadline = now + wait
		_ = c.nc.SetReadDeadline(monoTime(c.readDeadline))
	}
}
