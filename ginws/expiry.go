package ginws

import (
	"time"

	"github.com/gin-gonic/gin"
)

// Credentials expire; sockets outlive them. A JWT is checked at the handshake only, so without a
// deadline a socket would stay open for days after its token expired. Middleware that admits a
// request on credentials with an end (middleware.JWT) tells Mount when they expire (SetExpiry);
// the connection is closed with CloseTokenExpired then, unless the consumer has moved the deadline
// first (Conn.SetExpiry, after validating a fresh token: middleware.RefreshToken).

// CloseTokenExpired closes a connection whose credentials expired without being refreshed, with
// the reason "token expired". It is 3000, registered with IANA as "Unauthorized": a registered
// code means the same to every client library and leaves the application's own 4000-4999 codes
// alone. A client should get a fresh token and reconnect (or refresh before the deadline).
const CloseTokenExpired = 3000

// expiryKey holds the credentials' expiry on the gin.Context of a handshake.
const expiryKey = "ginws.expires"

// SetExpiry tells Mount that the credentials admitting this request expire at t: the connection
// will be closed with CloseTokenExpired at t unless Conn.SetExpiry moves the deadline. Auth
// middleware calls it (middleware.JWT does, with the token's exp plus the leeway); a zero t sets
// no deadline.
func SetExpiry(c *gin.Context, t time.Time) { c.Set(expiryKey, t) }

// handshakeExpiry returns what SetExpiry recorded, or the zero time.
func handshakeExpiry(c *gin.Context) time.Time {
	v, _ := c.Get(expiryKey)
	t, _ := v.(time.Time)
	return t
}

// SetExpiry moves the connection's credential deadline to t (the zero time removes it): at t the
// connection is closed with CloseTokenExpired and the reason "token expired". Call it after
// validating fresh credentials with the rules that admitted the connection — for a JWT,
// middleware.RefreshToken does both. Safe from any goroutine.
func (c *Conn) SetExpiry(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stateNow() == stateClosed {
		return
	}
	if t.IsZero() && c.rare == nil {
		return
	}
	r := c.rareLocked()
	r.expiry = t
	if t.IsZero() {
		if r.expiryTimer != nil {
			r.expiryTimer.Stop()
			r.expiryTimer = nil
		}
		return
	}
	d := time.Until(t)
	if r.expiryTimer == nil {
		r.expiryTimer = time.AfterFunc(d, c.expire)
		return
	}
	r.expiryTimer.Reset(d)
}

// expire is the expiry timer's function: it closes the connection unless the deadline was moved
// while the timer fired.
func (c *Conn) expire() {
	c.mu.Lock()
	r := c.rareNow()
	if r.expiryTimer == nil || r.expiry.IsZero() {
		c.mu.Unlock()
		return
	}
	if d := time.Until(r.expiry); d > 0 {
		r.expiryTimer.Reset(d)
		c.mu.Unlock()
		return
	}
	r.expiryTimer = nil
	c.closeWithLocked(CloseTokenExpired, "token expired")
	c.mu.Unlock()
	c.Logger().Info("ginws: credentials expired; closing", "close_code", CloseTokenExpired)
}

// stopExpiryLocked stops the expiry timer of a connection that ended. Callers hold c.mu.
func (c *Conn) stopExpiryLocked() {
	if r := c.rareNow(); r.expiryTimer != nil {
		r.expiryTimer.Stop()
		r.expiryTimer = nil
	}
}
