package middleware

import (
	"errors"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"ginws.dev/ginws"
)

// ErrRefreshRefused is returned (wrapped, with the reason) by RefreshToken for a token that does
// not pass: invalid under the connection's JWTConfig, or for another subject.
var ErrRefreshRefused = errors.New("middleware: token refresh refused")

const refresherKey = "ginws.jwt.refresher"

// refresher verifies a fresh token for a connection with the rules of the JWT middleware that
// admitted it. Read-only after the handshake.
type refresher struct {
	parser    *jwt.Parser
	keyfunc   jwt.Keyfunc
	newClaims func() jwt.Claims
	leeway    time.Duration
	subject   string // the admitting token's sub
}

// RefreshToken extends the life of a connection admitted by JWT with a fresh token, typically one
// the client sends in a message before its old one expires. The token must pass every rule the
// handshake's did — the same algorithms and key, issuer, audience, expiry and issued-at checks —
// and name the same subject: a socket cannot change hands. On success the connection's deadline
// moves to the new token's expiry (plus Leeway; a token without exp, where AllowNoExpiry lets it
// through, removes the deadline) and the new claims are returned. On failure the deadline stays,
// and the error wraps ErrRefreshRefused with a reason that contains nothing of the token.
//
// The claims in the Scope (ClaimsFrom) stay those of the handshake. It is safe from any
// goroutine; consumers call it from a handler:
//
//	func (c *Consumer) ReceiveJSON(ctx context.Context, in Msg) error {
//		if in.Refresh != "" {
//			if _, err := middleware.RefreshToken(c.Conn, in.Refresh); err != nil {
//				return c.SendJSON(gin.H{"error": "refresh refused"})
//			}
//		}
//		...
func RefreshToken(conn *ginws.Conn, token string) (jwt.Claims, error) {
	rf, ok := ginws.NewKey[*refresher](refresherKey).Get(conn.Scope())
	if !ok {
		return nil, fmt.Errorf("%w: the connection was not admitted by middleware.JWT", ErrRefreshRefused)
	}
	claims := rf.newClaims()
	if _, err := rf.parser.ParseWithClaims(token, claims, rf.keyfunc); err != nil {
		return nil, fmt.Errorf("%w: %s", ErrRefreshRefused, tokenProblem(err))
	}
	if sub, _ := claims.GetSubject(); sub != rf.subject {
		return nil, fmt.Errorf("%w: another subject", ErrRefreshRefused)
	}
	var deadline time.Time
	if exp, _ := claims.GetExpirationTime(); exp != nil {
		deadline = exp.Add(rf.leeway)
	}
	conn.SetExpiry(deadline)
	return claims, nil
}
