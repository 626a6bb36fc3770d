package middleware

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/golang-jwt/jwt/v5"
	"github.com/gorilla/websocket"

	"ginws.dev/ginws"
)

// TokenSource is a place JWT looks for a token.
type TokenSource int

const (
	// FromHeader reads "Authorization: Bearer TOKEN" (non-browser clients).
	FromHeader TokenSource = iota
	// FromSubprotocol reads the subprotocol after the marker (default "bearer") in
	// Sec-WebSocket-Protocol — what a browser can send: new WebSocket(url, ["bearer", token]).
	// The marker is echoed back on accept, as browsers require, and the token is removed from the
	// request's headers so it never reaches the Scope.
	FromSubprotocol
	// FromQuery reads a query parameter (default "token"). Query strings end up in access logs
	// (gin.Logger prints them): prefer FromSubprotocol or FromCookie. The parameter is removed from
	// the request's URL so it never reaches the Scope.
	FromQuery
	// FromCookie reads a cookie (JWTConfig.Cookie).
	FromCookie
)

// JWTConfig configures JWT. Algorithms and a key (Key or Keyfunc) are required; JWT panics at
// construction with a *ginws.ConfigError when they are missing or unsafe, as a misconfiguration
// must not reach production.
type JWTConfig struct {
	// Algorithms pins the accepted signing algorithms, e.g. []string{"RS256"}. All must be of one
	// family (HMAC, RSA, ECDSA or EdDSA) so that a token can never choose how it is verified;
	// "none" is refused. Required.
	Algorithms []string
	// Key verifies every token: a []byte secret for HS*, *rsa.PublicKey for RS*/PS*,
	// *ecdsa.PublicKey for ES*, ed25519.PublicKey for EdDSA. It must match Algorithms.
	// Set Key or Keyfunc.
	Key any
	// Keyfunc picks the key per token (for rotation: look it up by the token's "kid" header, as
	// from a JWKS document). Set Key or Keyfunc.
	Keyfunc jwt.Keyfunc
	// Sources lists where to look for a token, in order. Optional. Default FromHeader, then
	// FromSubprotocol.
	Sources []TokenSource
	// Subprotocol is the FromSubprotocol marker. Optional. Default "bearer".
	Subprotocol string
	// QueryParam is the FromQuery parameter. Optional. Default "token".
	QueryParam string
	// Cookie is the FromCookie cookie name. Required with FromCookie.
	Cookie string
	// Leeway tolerates clock skew in exp, nbf and iat. Optional. Default 0 (none); negative is
	// refused.
	Leeway time.Duration
	// Issuer, when set, must equal the token's iss.
	Issuer string
	// Audience, when set, must be in the token's aud.
	Audience string
	// AllowNoExpiry accepts tokens without exp. Optional. Default false: exp is required.
	AllowNoExpiry bool
	// Optional lets requests without any token through, anonymous (a token that is present but
	// invalid is still refused). Optional. Default false: no token → 401.
	Optional bool
	// NewClaims returns the claims value to decode into. Optional. Default jwt.MapClaims.
	NewClaims func() jwt.Claims
	// Logger receives the middleware's log lines (refused tokens, at debug level, never the token
	// itself). Optional. Default slog.Default().
	Logger *slog.Logger
}

const claimsKey = "ginws.jwt.claims"

// JWT verifies a JSON Web Token before the upgrade and stores its claims for consumers
// (ClaimsFrom) and views (ClaimsFromGin). A socket it admits is closed with
// ginws.CloseTokenExpired when the token expires (exp plus Leeway), unless the consumer refreshed
// it with RefreshToken. A missing token (unless Optional) or an invalid one —
// expired, not yet valid, badly signed, of another algorithm, for another audience or issuer — is
// refused with 401 Unauthorized and a WWW-Authenticate header, before the upgrade. Tokens never
// appear in log lines.
func JWT(cfg JWTConfig) gin.HandlerFunc {
	if err := cfg.check(); err != nil {
		panic(err)
	}
	opts := []jwt.ParserOption{jwt.WithValidMethods(cfg.Algorithms), jwt.WithIssuedAt()}
	if cfg.Leeway > 0 {
		opts = append(opts, jwt.WithLeeway(cfg.Leeway))
	}
	if !cfg.AllowNoExpiry {
		opts = append(opts, jwt.WithExpirationRequired())
	}
	if cfg.Issuer != "" {
		opts = append(opts, jwt.WithIssuer(cfg.Issuer))
	}
	if cfg.Audience != "" {
		opts = append(opts, jwt.WithAudience(cfg.Audience))
	}
	parser := jwt.NewParser(opts...)
	keyfunc := cfg.Keyfunc
	if keyfunc == nil {
		key := cfg.Key
		keyfunc = func(*jwt.Token) (any, error) { return key, nil }
	}
	if len(cfg.Sources) == 0 {
		cfg.Sources = []TokenSource{FromHeader, FromSubprotocol}
	}
	if cfg.Subprotocol == "" {
		cfg.Subprotocol = "bearer"
	}
	if cfg.QueryParam == "" {
		cfg.QueryParam = "token"
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	newClaims := cfg.NewClaims
	if newClaims == nil {
		newClaims = func() jwt.Claims { return jwt.MapClaims{} }
	}
	return func(c *gin.Context) {
		token, source := cfg.extract(c)
		if token == "" {
			if cfg.Optional {
				c.Next()
				return
			}
			unauthorized(c, "")
			return
		}
		claims := newClaims()
		if _, err := parser.ParseWithClaims(token, claims, keyfunc); err != nil {
			reason := tokenProblem(err)
			log.Debug("ginws/middleware: JWT refused", "path", c.Request.URL.Path, "reason", reason)
			unauthorized(c, reason)
			return
		}
		if source == FromSubprotocol {
			ginws.PreferSubprotocol(c, cfg.Subprotocol)
		}
		c.Set(claimsKey, claims)
		rf := &refresher{parser: parser, keyfunc: keyfunc, newClaims: newClaims, leeway: cfg.Leeway}
		rf.subject, _ = claims.GetSubject()
		c.Set(refresherKey, rf)
		if exp, _ := claims.GetExpirationTime(); exp != nil {
			ginws.SetExpiry(c, exp.Add(cfg.Leeway)) // the socket closes with 3000 then, unless refreshed
		}
		c.Next()
	}
}

// ClaimsFrom returns a connection's verified claims (jwt.MapClaims unless NewClaims said otherwise).
func ClaimsFrom[C any](s *ginws.Scope) (C, bool) { return ginws.NewKey[C](claimsKey).Get(s) }

// ClaimsFromGin returns a request's verified claims.
func ClaimsFromGin[C any](c *gin.Context) (C, bool) { return ginws.NewKey[C](claimsKey).FromGin(c) }

func unauthorized(c *gin.Context, reason string) {
	h := `Bearer realm="ginws"`
	if reason != "" {
		h += `, error="invalid_token", error_description="` + reason + `"`
	}
	c.Header("WWW-Authenticate", h)
	c.AbortWithStatus(http.StatusUnauthorized)
}

// tokenProblem names what is wrong with a token in words that contain nothing of the token.
func tokenProblem(err error) string {
	for _, p := range []struct {
		err    error
		reason string
	}{
		{jwt.ErrTokenExpired, "token expired"},
		{jwt.ErrTokenNotValidYet, "token not valid yet"},
		{jwt.ErrTokenUsedBeforeIssued, "token issued in the future"},
		{jwt.ErrTokenSignatureInvalid, "bad signature or algorithm"},
		{jwt.ErrTokenInvalidAudience, "wrong audience"},
		{jwt.ErrTokenInvalidIssuer, "wrong issuer"},
		{jwt.ErrTokenRequiredClaimMissing, "required claim missing"},
		{jwt.ErrTokenMalformed, "malformed token"},
		{jwt.ErrTokenUnverifiable, "unverifiable token"},
	} {
		if errors.Is(err, p.err) {
			return p.reason
		}
	}
	return "invalid token"
}

// extract finds the token in the configured sources, and removes it from the request where it
// would otherwise reach the Scope.
func (cfg *JWTConfig) extract(c *gin.Context) (string, TokenSource) {
	r := c.Request
	for _, src := range cfg.Sources {
		switch src {
		case FromHeader:
			if h := r.Header.Get("Authorization"); len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
				return strings.TrimSpace(h[7:]), src
			}
		case FromSubprotocol:
			offered := websocket.Subprotocols(r) // the header's comma-separated list, in order
			for i, p := range offered {
				if p == cfg.Subprotocol && i+1 < len(offered) {
					token := offered[i+1]
					kept := append(append([]string(nil), offered[:i+1]...), offered[i+2:]...)
					r.Header.Set("Sec-WebSocket-Protocol", strings.Join(kept, ", "))
					return token, src
				}
			}
		case FromQuery:
			q := r.URL.Query()
			if t := q.Get(cfg.QueryParam); t != "" {
				q.Del(cfg.QueryParam)
				r.URL.RawQuery = q.Encode()
				return t, src
			}
		case FromCookie:
			if ck, err := r.Cookie(cfg.Cookie); err == nil && ck.Value != "" {
				return ck.Value, src
			}
		}
	}
	return "", 0
}

// check refuses configurations that would weaken verification, with a *ginws.ConfigError.
func (cfg *JWTConfig) check() error {
	bad := func(field string, value any, rule string) error {
		return &ginws.ConfigError{Field: "middleware.JWTConfig." + field, Value: value, Rule: rule}
	}
	if len(cfg.Algorithms) == 0 {
		return bad("Algorithms", "[]", "required: pin the algorithms you issue, e.g. RS256")
	}
	if cfg.Key == nil && cfg.Keyfunc == nil {
		return bad("Key", nil, "a Key or a Keyfunc is required")
	}
	family := ""
	for _, a := range cfg.Algorithms {
		f := algFamily(a)
		if f == "" {
			return bad("Algorithms", fmt.Sprintf("%q", a), "not allowed: use HS*, RS*, PS*, ES* or EdDSA; never none")
		}
		if family != "" && f != family {
			return bad("Algorithms", cfg.Algorithms, fmt.Sprintf("mixes families (%s and %s): a token could pick how it is verified", family, f))
		}
		family = f
	}
	if cfg.Key != nil {
		if kf := keyFamily(cfg.Key); kf != family {
			return bad("Key", fmt.Sprintf("a %T", cfg.Key), fmt.Sprintf("cannot verify %v", cfg.Algorithms))
		}
	}
	for _, s := range cfg.Sources {
		if s == FromCookie && cfg.Cookie == "" {
			return bad("Cookie", `""`, "required with FromCookie")
		}
	}
	if cfg.Leeway < 0 {
		return bad("Leeway", cfg.Leeway, "must not be negative (zero means no tolerance)")
	}
	return nil
}

func algFamily(alg string) string {
	switch alg {
	case "HS256", "HS384", "HS512":
		return "hmac"
	case "RS256", "RS384", "RS512", "PS256", "PS384", "PS512":
		return "rsa"
	case "ES256", "ES384", "ES512":
		return "ecdsa"
	case "EdDSA":
		return "eddsa"
	}
	return ""
}

func keyFamily(key any) string {
	switch key.(type) {
	case []byte:
		return "hmac"
	case *rsa.PublicKey:
		return "rsa"
	case *ecdsa.PublicKey:
		return "ecdsa"
	case ed25519.PublicKey:
		return "eddsa"
	}
	return "unknown"
}
