package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"
)

// Params are a scenario's knobs.
type Params struct {
	Conns    int
	Rooms    int
	Duration time.Duration
	Window   int     // fan-out: messages a sender may have in flight
	Rate     float64 // fixed rate: messages per second per room
	Cycles   int     // churn: connect/disconnect cycles
	Batch    int     // churn: connections per batch
	Size     int     // bytes of padding in each message ("pad" payload)
	Payload  string  // what the padding is: "pad", "chat" or "notify" (see padding)
	Par      int     // parallel dials
}

// Result is one row of the report.
type Result struct {
	Mode, Server     string
	Conns, Rooms     int
	Deliveries       int64
	Elapsed          time.Duration
	CPU              time.Duration
	RSSPerConn       float64 // bytes
	P50, P99, Max    time.Duration
	Lost             int64
	GoroutinesBefore int
	GoroutinesAfter  int
	HeapBefore       uint64
	HeapAfter        uint64
	RSSBefore        int64
	RSSAfter         int64
	Writes           int64         // the server's write system calls during the run
	WireIn           int64         // bytes the clients read from their sockets during the run
	Procs            int           // server processes sharing the rooms
	RedisCPU         time.Duration // CPU time of the Redis they share, when known
	Err              error
}

// WritesPerDelivery is how many write system calls the server made per delivered message.
func (r Result) WritesPerDelivery() float64 {
	if r.Deliveries == 0 {
		return 0
	}
	return float64(r.Writes) / float64(r.Deliveries)
}

// DeliveriesPerSec is the fan-out throughput.
func (r Result) DeliveriesPerSec() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Deliveries) / r.Elapsed.Seconds()
}

// CPUPerDelivery is the server's CPU time per delivered message.
func (r Result) CPUPerDelivery() time.Duration {
	if r.Deliveries == 0 {
		return 0
	}
	return r.CPU / time.Duration(r.Deliveries)
}

func makeRooms(n int, record bool) []*Room {
	rooms := make([]*Room, n)
	for i := range rooms {
		rooms[i] = newRoom(fmt.Sprintf("room%d", i), record)
	}
	return rooms
}

// populate connects Conns clients in Rooms rooms and lets the server settle.
func populate(ctx context.Context, p *Proc, o Params, record bool, prefix string) ([]*Room, []*Client, error) {
	rooms := makeRooms(o.Rooms, record)
	clients, err := connectAll(ctx, p.Addrs(), p.wire, rooms, o.Conns, o.Par, prefix)
	if err != nil {
		return nil, nil, err
	}
	if err := settleRooms(ctx, rooms); err != nil {
		closeAll(clients)
		return nil, nil, err
	}
	return rooms, clients, nil
}

// settleRooms makes sure that every member of every room receives what its room's sender sends
// from now on. The hub peers register a connection only after its handshake, so a sender that
// started at once could miss a member (a 500 ms sleep did this job, unless the machine stalled
// for longer). It sends probes (seq 0, which readers note and do not count) from each room's
// first member, every 100 ms, until every member has seen one; 30 s at most.
func settleRooms(ctx context.Context, rooms []*Room) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		pending := 0
		for _, r := range rooms {
			if len(r.Clients) == 0 || r.probed() {
				continue
			}
			pending++
			if err := r.Clients[0].send(0, ""); err != nil {
				return fmt.Errorf("loadtest: probe to %s: %w", r.Name, err)
			}
		}
		if pending == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("loadtest: in %d rooms, a member never received a probe", pending)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Idle connects Conns clients and reports the server's RSS per connection; then one message per
// room checks that every connection is alive.
func Idle(ctx context.Context, p *Proc, o Params) Result {
	res := Result{Mode: "idle", Server: p.Name, Conns: o.Conns, Rooms: o.Rooms}
	p.Settle(ctx, time.Second)
	before, err := p.RSS()
	if err != nil {
		res.Err = err
		return res
	}
	rooms := makeRooms(o.Rooms, false)
	clients, err := connectAll(ctx, p.Addrs(), p.wire, rooms, o.Conns, o.Par, "idle")
	if err != nil {
		res.Err = err
		return res
	}
	defer closeAll(clients)
	p.Settle(ctx, 2*time.Second)
	after, err := p.RSS()
	if err != nil {
		res.Err = err
		return res
	}
	res.RSSBefore, res.RSSAfter = before, after
	res.RSSPerConn = float64(after-before) / float64(o.Conns)
	pad := o.padding()
	for _, r := range rooms {
		if err := r.Clients[0].send(1, pad); err != nil {
			res.Err = err
			return res
		}
		r.sent.Store(1)
	}
	res.Lost, res.Err = verify(ctx, rooms, 30*time.Second)
	return res
}

// FanOut has one sender per room publish as fast as the slowest member of its room allows (at
// most Window messages ahead of it) for Duration, and reports deliveries per second and the
// server's CPU time per delivery.
func FanOut(ctx context.Context, p *Proc, o Params) Result {
	res := Result{Mode: "fanout", Server: p.Name, Conns: o.Conns, Rooms: o.Rooms}
	rooms, clients, err := populate(ctx, p, o, false, "fan")
	if err != nil {
		res.Err = err
		return res
	}
	defer closeAll(clients)
	pad := o.padding()
	m, err := startMeter(p)
	if err != nil {
		res.Err = err
		return res
	}
	stop := m.start.Add(o.Duration)
	runCtx, cancel := context.WithTimeout(ctx, o.Duration+time.Minute)
	defer cancel()
	sendErr := runSenders(rooms, func(_ int, r *Room) error {
		for seq := int64(1); time.Now().Before(stop); seq++ {
			if !r.waitFor(runCtx, seq-1-int64(o.Window)) {
				return fmt.Errorf("%s: members stopped receiving", r.Name)
			}
			if err := r.Clients[0].send(seq, pad); err != nil {
				return err
			}
			r.sent.Store(seq)
		}
		return nil
	})
	conclude(ctx, m, rooms, clients, sendErr, &res)
	return res
}

// FixedRate has each room's sender publish Rate messages per second for Duration and reports
// delivery latency percentiles.
func FixedRate(ctx context.Context, p *Proc, o Params) Result {
	res := Result{Mode: "rate", Server: p.Name, Conns: o.Conns, Rooms: o.Rooms}
	rooms, clients, err := populate(ctx, p, o, true, "rate")
	if err != nil {
		res.Err = err
		return res
	}
	defer closeAll(clients)
	pad := o.padding()
	interval := time.Duration(float64(time.Second) / o.Rate)
	m, err := startMeter(p)
	if err != nil {
		res.Err = err
		return res
	}
	sendErr := runSenders(rooms, func(i int, r *Room) error {
		// Spread the rooms' ticks over the interval.
		time.Sleep(interval * time.Duration(i) / time.Duration(len(rooms)))
		t := time.NewTicker(interval)
		defer t.Stop()
		for seq := int64(1); time.Since(m.start) < o.Duration; seq++ {
			if err := r.Clients[0].send(seq, pad); err != nil {
				return err
			}
			r.sent.Store(seq)
			select {
			case <-t.C:
			case <-ctx.Done():
				return nil
			}
		}
		return nil
	})
	conclude(ctx, m, rooms, clients, sendErr, &res)
	var all []time.Duration
	for _, c := range clients {
		c.mu.Lock()
		all = append(all, c.latencies...)
		c.mu.Unlock()
	}
	if len(all) > 0 {
		slices.Sort(all)
		res.P50 = all[len(all)*50/100]
		res.P99 = all[min(len(all)-1, len(all)*99/100)]
		res.Max = all[len(all)-1]
	}
	return res
}

// meter measures a server over a run: wall time, CPU time and write system calls (and the CPU
// time of the Redis a multi-process server shares).
type meter struct {
	p        *Proc
	start    time.Time
	cpu      time.Duration
	writes   int64
	wireIn   int64
	redisCPU time.Duration
	redisOK  bool
}

func startMeter(p *Proc) (meter, error) {
	m := meter{p: p}
	var err error
	if m.cpu, err = p.CPU(); err != nil {
		return m, err
	}
	if p.redis != nil {
		m.redisCPU, err = p.redis.CPU(context.Background())
		m.redisOK = err == nil
	}
	m.writes, _ = p.WriteCalls()
	m.wireIn = wireIn.Load()
	m.start = time.Now()
	return m, nil
}

// runSenders runs send for every room at once and returns the first error.
func runSenders(rooms []*Room, send func(i int, r *Room) error) error {
	var wg sync.WaitGroup
	errc := make(chan error, len(rooms))
	for i, r := range rooms {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := send(i, r); err != nil {
				errc <- err
			}
		}()
	}
	wg.Wait()
	close(errc)
	return <-errc
}

// conclude waits until every message arrived (or reports the loss), stops the meter and counts
// the deliveries.
func conclude(ctx context.Context, m meter, rooms []*Room, clients []*Client, sendErr error, res *Result) {
	res.Lost, res.Err = verify(ctx, rooms, 30*time.Second)
	res.Elapsed = time.Since(m.start)
	cpu, _ := m.p.CPU()
	res.CPU = cpu - m.cpu
	w, _ := m.p.WriteCalls()
	res.Writes = w - m.writes
	res.WireIn = wireIn.Load() - m.wireIn
	res.Procs = len(m.p.Addrs())
	if m.redisOK {
		if rc, err := m.p.redis.CPU(context.Background()); err == nil {
			res.RedisCPU = rc - m.redisCPU
		}
	}
	for _, c := range clients {
		res.Deliveries += c.recv.Load()
	}
	if sendErr != nil && res.Err == nil {
		res.Err = sendErr
	}
}

// Churn connects and disconnects Batch clients at a time for Cycles connections in all, each
// exchanging one message, then reports the server's goroutines and heap against its baseline.
func Churn(ctx context.Context, p *Proc, o Params) Result {
	res := Result{Mode: "churn", Server: p.Name, Conns: o.Cycles, Rooms: o.Rooms}
	p.Settle(ctx, time.Second)
	st0, err := p.Stats(ctx)
	if err != nil {
		res.Err = err
		return res
	}
	res.RSSBefore, _ = p.RSS()
	res.GoroutinesBefore, res.HeapBefore = st0.Goroutines, st0.HeapInuse
	pad := o.padding()
	for done := 0; done < o.Cycles; done += o.Batch {
		n := min(o.Batch, o.Cycles-done)
		rooms := makeRooms(min(o.Rooms, n), false)
		clients, err := connectAll(ctx, p.Addrs(), p.wire, rooms, n, o.Par, fmt.Sprintf("churn%d-", done))
		if err != nil {
			res.Err = err
			return res
		}
		for _, r := range rooms {
			if err := r.Clients[0].send(1, pad); err != nil {
				res.Err = err
			}
			r.sent.Store(1)
		}
		lost, err := verify(ctx, rooms, 30*time.Second)
		res.Lost += lost
		res.Deliveries += int64(n)
		closeAll(clients)
		if err != nil {
			res.Err = err
			return res
		}
	}
	// Wait for the server to finish its disconnects, then compare with the baseline.
	deadline := time.Now().Add(15 * time.Second)
	for {
		p.Settle(ctx, 500*time.Millisecond)
		st, err := p.Stats(ctx)
		if err != nil {
			res.Err = err
			return res
		}
		res.GoroutinesAfter, res.HeapAfter = st.Goroutines, st.HeapInuse
		if st.Goroutines <= st0.Goroutines+churnGoroutineSlack || time.Now().After(deadline) {
			break
		}
	}
	res.RSSAfter, _ = p.RSS()
	if res.GoroutinesAfter > res.GoroutinesBefore+churnGoroutineSlack {
		res.Err = errors.Join(res.Err, fmt.Errorf("goroutines %d → %d after %d cycles", res.GoroutinesBefore, res.GoroutinesAfter, o.Cycles))
	}
	if float64(res.HeapAfter) > float64(res.HeapBefore)*1.25+2<<20 {
		res.Err = errors.Join(res.Err, fmt.Errorf("heap %d → %d bytes after %d cycles", res.HeapBefore, res.HeapAfter, o.Cycles))
	}
	return res
}

// churnGoroutineSlack tolerates the few goroutines a server may keep after load (idle HTTP
// keep-alive connections, timers).
const churnGoroutineSlack = 5
