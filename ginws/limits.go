package ginws

import (
	"math"
	"net/http"
	"strconv"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Limits caps what one client may do, so that one flooding client or one address opening sockets
// in a loop cannot take the server from everyone else. The zero value limits nothing; each field
// turns one limit on:
//
//	ginws.Config{Limits: ginws.Limits{Messages: ginws.Rate{PerSecond: 20, Burst: 50}}}
//
// Handshakes over a limit are refused with HTTP 429 Too Many Requests before the upgrade (with a
// Retry-After header for the handshake rates), and counted in Stats.HandshakesLimited.
type Limits struct {
	// Messages is each connection's budget of inbound messages (token bucket: Burst at once, then
	// PerSecond on average). A client over it is closed with 1008 (policy violation) and the reason
	// "message rate exceeded", after its messages read before are handled — a flooding client is a
	// broken or hostile one, and closing it frees its queue and its handler time at once. With
	// DropMessages the messages over the budget are dropped instead, and the connection lives on.
	// Either way each one is counted in Stats.MessagesLimited.
	Messages Rate
	// DropMessages drops messages over the Messages budget instead of closing the connection (for
	// clients that send bursts by design, such as cursor positions). The first drop on a connection
	// is logged.
	DropMessages bool

	// ConnsPerIP caps the sockets open (or in handshake) at once from one client address
	// (Scope.ClientIP: mind gin's trusted proxies). 0: no cap.
	ConnsPerIP int
	// ConnsPerUser caps the sockets open (or in handshake) at once for one user, as Config.User
	// names them; anonymous handshakes are not counted. 0: no cap.
	ConnsPerUser int
	// HandshakesPerIP limits the rate of handshakes from one client address.
	HandshakesPerIP Rate
	// HandshakesPerUser limits the rate of handshakes of one user (Config.User).
	HandshakesPerUser Rate
}

// Rate is a token bucket: Burst events at once, refilled at PerSecond per second. The zero value
// means no limit. A Burst of 0 with a positive PerSecond means a burst of 1.
type Rate struct {
	PerSecond float64
	Burst     int
}

func (r Rate) on() bool { return r.PerSecond > 0 }

func (r Rate) limiter() *rate.Limiter {
	return rate.NewLimiter(rate.Limit(r.PerSecond), max(r.Burst, 1))
}

func (l Limits) check() error {
	for _, f := range []struct {
		name string
		r    Rate
	}{{"Messages", l.Messages}, {"HandshakesPerIP", l.HandshakesPerIP}, {"HandshakesPerUser", l.HandshakesPerUser}} {
		if f.r.PerSecond < 0 || math.IsNaN(f.r.PerSecond) || math.IsInf(f.r.PerSecond, 0) || f.r.Burst < 0 {
			return &ConfigError{Field: "ginws.Config.Limits." + f.name, Value: f.r, Rule: "PerSecond and Burst must be finite and not negative (zero PerSecond: no limit)"}
		}
	}
	if l.ConnsPerIP < 0 || l.ConnsPerUser < 0 {
		return &ConfigError{Field: "ginws.Config.Limits.ConnsPer*", Value: [2]int{l.ConnsPerIP, l.ConnsPerUser}, Rule: "must not be negative (zero: no cap)"}
	}
	return nil
}

// errRateExceeded closes a client over its message budget.
var errRateExceeded = &CloseError{Code: ClosePolicyViolation, Reason: "message rate exceeded"}

// admission counts the sockets and handshakes of each client address and user, for the
// handshake limits. Handshakes only: nothing here runs per message.
type admission struct {
	ip, user limitTable
}

// limitTable is the state of one kind of key (addresses or users).
type limitTable struct {
	maxOpen int
	rate    Rate

	mu      sync.Mutex
	keys    map[string]*keyLimits // guarded by mu
	sweepAt int                   // guarded by mu: len(keys) at which idle keys are swept next
}

type keyLimits struct {
	open int           // sockets admitted and not yet forgotten
	lim  *rate.Limiter // nil without a handshake rate
}

func (t *limitTable) on() bool { return t.maxOpen > 0 || t.rate.on() }

// admit counts a handshake for key; ok false refuses it, with retry (0: unknown) for Retry-After.
func (t *limitTable) admit(key string, now time.Time) (ok bool, retry time.Duration) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.keys == nil {
		t.keys, t.sweepAt = make(map[string]*keyLimits), 1024
	}
	k := t.keys[key]
	if k == nil {
		if len(t.keys) >= t.sweepAt {
			t.sweepLocked(now)
		}
		k = &keyLimits{}
		if t.rate.on() {
			k.lim = t.rate.limiter()
		}
		t.keys[key] = k
	}
	if t.maxOpen > 0 && k.open >= t.maxOpen {
		return false, 0
	}
	if k.lim != nil {
		r := k.lim.ReserveN(now, 1)
		if d := r.DelayFrom(now); d > 0 {
			r.CancelAt(now)
			return false, d
		}
	}
	k.open++
	return true, 0
}

// release uncounts a socket admitted for key.
func (t *limitTable) release(key string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if k := t.keys[key]; k != nil {
		k.open--
		if k.open <= 0 && k.lim == nil {
			delete(t.keys, key)
		}
	}
}

// sweepLocked forgets the keys with no socket open whose bucket has refilled: they are as good as
// new. The next sweep waits until the table has doubled, so sweeping costs O(1) per handshake.
func (t *limitTable) sweepLocked(now time.Time) {
	for key, k := range t.keys {
		if k.open <= 0 && (k.lim == nil || k.lim.TokensAt(now) >= float64(k.lim.Burst())) {
			delete(t.keys, key)
		}
	}
	t.sweepAt = max(1024, 2*len(t.keys))
}

// admit applies the handshake limits to a new connection and records its keys on it, for
// forget. It answers a refused handshake itself (429) and returns false.
func (s *Server) admit(c *Conn, w http.ResponseWriter) bool {
	a := &s.limits
	if !a.ip.on() && !a.user.on() {
		return true
	}
	now := time.Now()
	if a.ip.on() {
		ip := c.scope.ClientIP()
		ok, retry := a.ip.admit(ip, now)
		if !ok {
			s.tooMany(c, w, "ip", retry)
			return false
		}
		c.mu.Lock()
		r := c.rareLocked()
		r.limitIP, r.limitedIP = ip, true
		c.mu.Unlock()
	}
	if a.user.on() && c.user != "" {
		ok, retry := a.user.admit(c.user, now)
		if !ok {
			s.releaseLimits(c)
			s.tooMany(c, w, "user", retry)
			return false
		}
		c.mu.Lock()
		c.rareLocked().limitedUser = true
		c.mu.Unlock()
	}
	return true
}

func (s *Server) tooMany(c *Conn, w http.ResponseWriter, by string, retry time.Duration) {
	s.handshakesLimited.Add(1)
	s.refused.Add(1)
	s.refusals.count(http.StatusTooManyRequests)
	c.Logger().Info("ginws: handshake refused: over the limit", "by", by, "status", http.StatusTooManyRequests)
	if retry > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(retry.Seconds()))))
	}
	w.WriteHeader(http.StatusTooManyRequests)
}

// releaseLimits uncounts a connection that is gone (or was refused after admit).
func (s *Server) releaseLimits(c *Conn) {
	c.mu.Lock()
	r := c.rareNow()
	ip, user := r.limitedIP, r.limitedUser
	limitIP := r.limitIP
	if ip || user {
		r.limitedIP, r.limitedUser = false, false
	}
	c.mu.Unlock()
	if ip {
		s.limits.ip.release(limitIP)
	}
	if user {
		s.limits.user.release(c.user)
	}
}
