package redislayer_test

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"ginws.dev/ginws/layer"
	"ginws.dev/ginws/redislayer"
)

// A fault rig: member "processes" (Layers, each with its own process key and keeper, as separate
// processes have) with subscribed channels in one group, and a sender Layer that group-sends
// numbered messages at a steady pace through the fault. Every send is recorded (when it started,
// ended, and its error) and every delivery counted per member, so a test can say for each message
// whether it was delivered to every member, refused with an error, or lost in silence.

type rigMember struct {
	name string
	mu   sync.Mutex
	got  map[int]int       // seq → deliveries
	at   map[int]time.Time // seq → first delivery
}

type rigProc struct {
	l       *redislayer.Layer
	members []*rigMember
}

type sendRec struct {
	start, end time.Time
	err        error
}

type faultRig struct {
	t      *testing.T
	group  string
	procs  []*rigProc
	sender *redislayer.Layer
	pace   time.Duration

	mu    sync.Mutex
	sends []sendRec // by seq
	stop  chan struct{}
	done  chan struct{}
}

// rigConfig is the layer configuration of the rig's processes: short timeouts, so that a fault is
// noticed and reported within about a second.
func rigConfig(hosts []string, prefix string) redislayer.Config {
	return redislayer.Config{
		Hosts: hosts, Prefix: prefix, CallTimeout: time.Second, DialTimeout: 500 * time.Millisecond,
		MaxBackoff: 500 * time.Millisecond, PollTimeout: 200 * time.Millisecond, Capacity: 10000,
	}
}

// newFaultRig starts procs member processes of perProc channels each, all in one group, and a
// sender; all close at the end of t.
func newFaultRig(t *testing.T, cfg redislayer.Config, procs, perProc int) *faultRig {
	t.Helper()
	r := &faultRig{t: t, group: "room", pace: 5 * time.Millisecond}
	open := func() *redislayer.Layer {
		l, err := redislayer.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = l.Close() })
		return l
	}
	for p := 0; p < procs; p++ {
		rp := &rigProc{l: open()}
		for i := 0; i < perProc; i++ {
			ch, err := rp.l.NewChannel(ctxT(t), "")
			if err != nil {
				t.Fatal(err)
			}
			m := &rigMember{name: fmt.Sprintf("p%d/m%d", p, i), got: make(map[int]int), at: make(map[int]time.Time)}
			unsub, err := rp.l.Subscribe(ch, func(e *layer.Envelope) error {
				seq, _ := e.Message.Int("seq")
				now := time.Now()
				m.mu.Lock()
				if m.got[int(seq)] == 0 {
					m.at[int(seq)] = now
				}
				m.got[int(seq)]++
				m.mu.Unlock()
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(unsub)
			if err := rp.l.GroupAdd(ctxT(t), r.group, ch); err != nil {
				t.Fatal(err)
			}
			rp.members = append(rp.members, m)
		}
		r.procs = append(r.procs, rp)
	}
	r.sender = open()
	r.waitHealthy(10 * time.Second)
	return r
}

// layers returns every Layer of the rig, the sender last.
func (r *faultRig) layers() []*redislayer.Layer {
	var ls []*redislayer.Layer
	for _, p := range r.procs {
		ls = append(ls, p.l)
	}
	return append(ls, r.sender)
}

// waitHealthy waits until every Layer's Health is nil, and returns when that was.
func (r *faultRig) waitHealthy(within time.Duration) time.Time {
	at, _ := r.waitRecovered(within, nil)
	return at
}

// waitRecovered waits until every Layer's Health is nil, and returns when that was and, for each
// member process whose Stats().Readded was readded[i], when it had re-added its memberships.
func (r *faultRig) waitRecovered(within time.Duration, readded []uint64) (time.Time, []time.Time) {
	r.t.Helper()
	restored := make([]time.Time, len(readded))
	deadline := time.Now().Add(within)
	for {
		now := time.Now()
		for i, before := range readded {
			if restored[i].IsZero() && r.procs[i].l.Stats().Readded > before {
				restored[i] = now
			}
		}
		ok := true
		for _, l := range r.layers() {
			ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
			err := l.Health(ctx)
			cancel()
			if err != nil {
				ok = false
				if time.Now().After(deadline) {
					r.t.Fatalf("a layer still unhealthy after %v: %v", within, err)
				}
				break
			}
		}
		if ok {
			// Not now: the Layers are checked one after the other, and the last ones (the
			// sender) may have recovered only while the first were checked. A send started
			// before the sender was healthy again may be refused, and is not "after recovery".
			return time.Now(), restored
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// readded returns each member process's Stats().Readded.
func (r *faultRig) readded() []uint64 {
	var out []uint64
	for _, p := range r.procs {
		out = append(out, p.l.Stats().Readded)
	}
	return out
}

// waitDegraded waits until every Layer has counted a degradation since before.
func (r *faultRig) waitDegraded(before []uint64, within time.Duration) {
	r.t.Helper()
	deadline := time.Now().Add(within)
	for i, l := range r.layers() {
		for l.Stats().Degradations <= before[i] {
			if time.Now().After(deadline) {
				r.t.Fatalf("layer %d did not report the fault within %v", i, within)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
}

func (r *faultRig) degradations() []uint64 {
	var d []uint64
	for _, l := range r.layers() {
		d = append(d, l.Stats().Degradations)
	}
	return d
}

// startSending group-sends {"type": "m", "seq": n} every pace until stopSending.
func (r *faultRig) startSending() {
	r.stop, r.done = make(chan struct{}), make(chan struct{})
	go func() {
		defer close(r.done)
		tick := time.NewTicker(r.pace)
		defer tick.Stop()
		for seq := 0; ; seq++ {
			select {
			case <-r.stop:
				return
			case <-tick.C:
			}
			start := time.Now()
			err := r.sender.GroupSend(context.Background(), r.group, layer.Message{"type": "m", "seq": seq})
			r.mu.Lock()
			r.sends = append(r.sends, sendRec{start: start, end: time.Now(), err: err})
			r.mu.Unlock()
		}
	}()
}

func (r *faultRig) stopSending() {
	close(r.stop)
	<-r.done
}

// nextSeq is the seq of the next message to be sent.
func (r *faultRig) nextSeq() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.sends)
}

// settle waits until every message sent without error from seq on has reached every member, or
// until within passed.
func (r *faultRig) settle(from int, within time.Duration) { r.settleIn(from, -1, within) }

// settleIn is settle for the sends from seq from up to to (excluded; -1: all sent so far).
func (r *faultRig) settleIn(from, to int, within time.Duration) {
	for deadline := time.Now().Add(within); r.missingIn(from, to) != 0 && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
	}
}

func (r *faultRig) missingFrom(from int) int { return r.missingIn(from, -1) }

// missingIn counts the member deliveries missing of the successful sends from seq from up to to
// (excluded; -1: all sent so far).
func (r *faultRig) missingIn(from, to int) int {
	r.mu.Lock()
	sends := r.sends
	r.mu.Unlock()
	if to < 0 || to > len(sends) {
		to = len(sends)
	}
	n := 0
	for _, p := range r.procs {
		for _, m := range p.members {
			m.mu.Lock()
			for seq := from; seq < to; seq++ {
				if sends[seq].err == nil && m.got[seq] == 0 {
					n++
				}
			}
			m.mu.Unlock()
		}
	}
	return n
}

// phase counts of a fault run. Deliveries are per member: one message to 10 members is 10.
type phaseCount struct {
	sent, ok, refused, failed   int // messages: sent, returned nil, ErrDegraded, another error
	delivered, lost, duplicates int // member deliveries of ok messages; ok messages a member missed; extra copies
	errDelivered                int // member deliveries of messages whose send returned an error
}

// faultReport counts the run in three phases: before the fault (the sends settledCount waited
// for), during it (the rest of those started before recoveredAt), and after recovery (started at
// or after recoveredAt, when every Layer's Health was nil again).
type faultReport struct {
	before, during, after phaseCount
	members               int
	lostDuring            []int // seqs of ok messages some member missed, during the fault
}

// settledCount takes the number of sends made so far, waits (within, at most) until every member
// has each of them, and returns it: the sends before it count as "before the fault" (report). A
// time would not do: a message acknowledged just before the fault may still be queued in Redis
// when the fault hits, and a killed Redis loses it, as the rules allow for "during".
func (r *faultRig) settledCount(within time.Duration) int {
	r.mu.Lock()
	n := len(r.sends)
	r.mu.Unlock()
	r.settleIn(0, n, within)
	return n
}

// report counts the sends in three phases: before the fault (seq < faultSeq), after recovery
// (started at or after recoveredAt), and during (the rest).
func (r *faultRig) report(faultSeq int, recoveredAt time.Time) faultReport {
	r.mu.Lock()
	sends := append([]sendRec(nil), r.sends...)
	r.mu.Unlock()
	var rep faultReport
	var all []*rigMember
	for _, p := range r.procs {
		all = append(all, p.members...)
	}
	rep.members = len(all)
	for seq, s := range sends {
		pc := &rep.during
		switch {
		case seq < faultSeq:
			pc = &rep.before
		case !s.start.Before(recoveredAt):
			pc = &rep.after
		}
		pc.sent++
		switch {
		case s.err == nil:
			pc.ok++
		case errors.Is(s.err, redislayer.ErrDegraded):
			pc.refused++
		default:
			pc.failed++
		}
		missed := false
		for _, m := range all {
			m.mu.Lock()
			n := m.got[seq]
			m.mu.Unlock()
			if n > 1 {
				pc.duplicates += n - 1
			}
			switch {
			case s.err != nil && n > 0:
				pc.errDelivered++
			case s.err == nil && n > 0:
				pc.delivered++
			case s.err == nil:
				pc.lost++
				missed = true
			}
		}
		if missed && pc == &rep.during {
			rep.lostDuring = append(rep.lostDuring, seq)
		}
	}
	return rep
}

func (pc phaseCount) String() string {
	return fmt.Sprintf("sent %d: ok %d, refused (ErrDegraded) %d, failed %d; member deliveries %d, silently lost %d, duplicates %d, delivered though the send failed %d",
		pc.sent, pc.ok, pc.refused, pc.failed, pc.delivered, pc.lost, pc.duplicates, pc.errDelivered)
}

func (rep faultReport) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d members\n", rep.members)
	fmt.Fprintf(&b, "  before the fault:   %v\n", rep.before)
	fmt.Fprintf(&b, "  during the fault:   %v\n", rep.during)
	fmt.Fprintf(&b, "  after recovery:     %v", rep.after)
	return b.String()
}

// checkRules asserts the documented rules: before the fault and after recovery every message was
// sent and reached every member exactly once; nothing is ever delivered twice.
func (r *faultRig) checkRules(rep faultReport) {
	r.t.Helper()
	for name, pc := range map[string]phaseCount{"before the fault": rep.before, "after recovery": rep.after} {
		if pc.sent == 0 {
			r.t.Errorf("%s: no message sent", name)
		}
		if pc.ok != pc.sent || pc.delivered != pc.sent*rep.members {
			r.t.Errorf("%s: %v; want every send to succeed and reach all %d members", name, pc, rep.members)
		}
	}
	if d := rep.before.duplicates + rep.during.duplicates + rep.after.duplicates; d != 0 {
		r.t.Errorf("%d duplicate deliveries", d)
	}
}

// firstDeliveries returns, per member process, the first time one of its members got a message
// sent from seq on.
func (r *faultRig) firstDeliveries(from int) []time.Time {
	var out []time.Time
	for _, p := range r.procs {
		var first time.Time
		for _, m := range p.members {
			m.mu.Lock()
			for seq, at := range m.at {
				if seq >= from && (first.IsZero() || at.Before(first)) {
					first = at
				}
			}
			m.mu.Unlock()
		}
		out = append(out, first)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Before(out[j]) })
	return out
}

// sendsBefore returns the number of sends that ended before t.
func (r *faultRig) seqAt(t time.Time) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i, s := range r.sends {
		if !s.start.Before(t) {
			return i
		}
	}
	return len(r.sends)
}
