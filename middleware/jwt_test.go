package middleware_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"ginws.dev/ginws/wstest"
	"ginws.dev/middleware"
)

var (
	rsaOnce sync.Once
	rsaKey  *rsa.PrivateKey
)

func testRSAKey(t *testing.T) *rsa.PrivateKey {
	rsaOnce.Do(func() {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			panic(err)
		}
		rsaKey = k
	})
	return rsaKey
}

func sign(t *testing.T, method jwt.SigningMethod, key any, claims jwt.MapClaims, header map[string]any) string {
	t.Helper()
	tok := jwt.NewWithClaims(method, claims)
	for k, v := range header {
		tok.Header[k] = v
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// lockedBuffer collects a logger's output.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// debugLogger returns a logger at debug level that writes into the returned buffer.
func debugLogger() (*slog.Logger, *lockedBuffer) {
	buf := &lockedBuffer{}
	return slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug})), buf
}

func jwtApp(t *testing.T, cfg middleware.JWTConfig) (*harness, *wstest.Server) {
	h := newHarness(t)
	h.engine.GET("/ws", middleware.JWT(cfg), h.mount(func(p *probe) map[string]any {
		claims, _ := middleware.ClaimsFrom[jwt.MapClaims](p.Scope())
		return map[string]any{"sub": claims["sub"], "subprotocols": p.Scope().Subprotocols(), "query": p.Scope().Request().URL.RawQuery}
	}))
	return h, h.start(t)
}

// TestJWTRefusalMatrix: every bad token is refused before the upgrade with 401, and no log line
// contains a token.
func TestJWTRefusalMatrix(t *testing.T) {
	t.Parallel()
	log, logs := debugLogger()
	priv := testRSAKey(t)
	secret := []byte("an-hmac-secret-of-32-bytes-long!")
	h, ts := jwtApp(t, middleware.JWTConfig{
		Algorithms: []string{"RS256"},
		Key:        &priv.PublicKey,
		Audience:   "chat",
		Issuer:     "https://auth.example",
		Leeway:     5 * time.Second,
		Sources:    []middleware.TokenSource{middleware.FromHeader, middleware.FromSubprotocol, middleware.FromQuery, middleware.FromCookie},
		Cookie:     "jwt",
		Logger:     log,
	})
	now := time.Now()
	good := jwt.MapClaims{"sub": "ada", "aud": "chat", "iss": "https://auth.example", "exp": now.Add(time.Hour).Unix(), "iat": now.Unix()}
	with := func(k string, v any) jwt.MapClaims {
		c := jwt.MapClaims{}
		for kk, vv := range good {
			c[kk] = vv
		}
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
		return c
	}
	otherKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	valid := sign(t, jwt.SigningMethodRS256, priv, good, nil)
	noneToken := sign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, good, nil)
	// The classic confusion attack: an HS256 token whose "secret" is the server's RSA public key.
	pubDER := priv.PublicKey.N.Bytes()
	confused := sign(t, jwt.SigningMethodHS256, pubDER, good, nil)

	bad := map[string]string{
		"expired":          sign(t, jwt.SigningMethodRS256, priv, with("exp", now.Add(-time.Minute).Unix()), nil),
		"not yet valid":    sign(t, jwt.SigningMethodRS256, priv, with("nbf", now.Add(time.Minute).Unix()), nil),
		"issued in future": sign(t, jwt.SigningMethodRS256, priv, with("iat", now.Add(time.Minute).Unix()), nil),
		"no exp":           sign(t, jwt.SigningMethodRS256, priv, with("exp", nil), nil),
		"wrong signature":  sign(t, jwt.SigningMethodRS256, otherKey, good, nil),
		"alg none":         noneToken,
		"HS256 vs RSA key": confused,
		"HS256 by secret":  sign(t, jwt.SigningMethodHS256, secret, good, nil),
		"ES256":            sign(t, jwt.SigningMethodES256, ecKey, good, nil),
		"wrong audience":   sign(t, jwt.SigningMethodRS256, priv, with("aud", "billing"), nil),
		"wrong issuer":     sign(t, jwt.SigningMethodRS256, priv, with("iss", "https://evil.example"), nil),
		"garbage":          "not.a.jwt",
		"truncated":        valid[:len(valid)-10],
	}
	for name, token := range bad {
		t.Run(name, func(t *testing.T) {
			h.refused(t, ts.Communicator("/ws", wstest.Header("Authorization", "Bearer "+token)), http.StatusUnauthorized)
			h.refused(t, ts.Communicator("/ws", wstest.Subprotocols("bearer", token)), http.StatusUnauthorized)
			h.refused(t, ts.Communicator("/ws?token="+token), http.StatusUnauthorized)
		})
	}
	t.Run("missing", func(t *testing.T) {
		res, err := ts.Communicator("/ws").Connect(ctxT(t))
		if err != nil || res.Status != http.StatusUnauthorized || !strings.HasPrefix(res.Header.Get("WWW-Authenticate"), "Bearer") {
			t.Fatalf("no token: %+v %v", res, err)
		}
	})
	t.Run("expired within leeway", func(t *testing.T) {
		tok := sign(t, jwt.SigningMethodRS256, priv, with("exp", now.Add(-2*time.Second).Unix()), nil)
		h.accepted(t, ts.Communicator("/ws", wstest.Header("Authorization", "Bearer "+tok)))
	})
	t.Run("valid from each source", func(t *testing.T) {
		seen, _ := h.accepted(t, ts.Communicator("/ws", wstest.Header("Authorization", "Bearer "+valid)))
		if seen["sub"] != "ada" {
			t.Fatalf("header: %v", seen)
		}
		seen, res := h.accepted(t, ts.Communicator("/ws", wstest.Subprotocols("bearer", valid)))
		if seen["sub"] != "ada" || res.Subprotocol != "bearer" {
			t.Fatalf("subprotocol: saw %v, chosen %q (must echo the marker)", seen, res.Subprotocol)
		}
		if strings.Contains(toString(seen["subprotocols"]), valid) {
			t.Fatalf("the token reached the Scope's subprotocols: %v", seen["subprotocols"])
		}
		seen, _ = h.accepted(t, ts.Communicator("/ws?token="+valid+"&room=1"))
		if seen["sub"] != "ada" || seen["query"] != "room=1" {
			t.Fatalf("query: %v (the token must be removed from the query)", seen)
		}
		seen, _ = h.accepted(t, ts.Communicator("/ws", wstest.Header("Cookie", "jwt="+valid)))
		if seen["sub"] != "ada" {
			t.Fatalf("cookie: %v", seen)
		}
	})
	if !strings.Contains(logs.String(), "JWT refused") {
		t.Fatalf("refusals were not logged at all:\n%s", logs)
	}
	for name, token := range bad {
		for _, part := range strings.Split(token, ".") {
			if len(part) > 8 && strings.Contains(logs.String(), part) {
				t.Fatalf("a log line contains part of the %q token", name)
			}
		}
	}
	if strings.Contains(logs.String(), valid[len(valid)-20:]) {
		t.Fatal("a log line contains the valid token")
	}
}

func toString(v any) string {
	var b strings.Builder
	if l, ok := v.([]any); ok {
		for _, x := range l {
			s, _ := x.(string)
			b.WriteString(s + " ")
		}
	}
	return b.String()
}

// TestJWTKeyRotation: a Keyfunc picks the key by "kid", as with a JWKS document.
func TestJWTKeyRotation(t *testing.T) {
	t.Parallel()
	old, cur := []byte("old-secret-old-secret-old-secret"), []byte("new-secret-new-secret-new-secret")
	keys := map[string][]byte{"2025": old, "2026": cur}
	h, ts := jwtApp(t, middleware.JWTConfig{
		Algorithms: []string{"HS256"},
		Keyfunc: func(tok *jwt.Token) (any, error) {
			kid, _ := tok.Header["kid"].(string)
			k, ok := keys[kid]
			if !ok {
				return nil, jwt.ErrTokenUnverifiable
			}
			return k, nil
		},
	})
	claims := jwt.MapClaims{"sub": "ada", "exp": time.Now().Add(time.Hour).Unix()}
	for kid, key := range keys {
		tok := sign(t, jwt.SigningMethodHS256, key, claims, map[string]any{"kid": kid})
		h.accepted(t, ts.Communicator("/ws", wstest.Header("Authorization", "Bearer "+tok)))
	}
	wrongKid := sign(t, jwt.SigningMethodHS256, old, claims, map[string]any{"kid": "2026"})
	h.refused(t, ts.Communicator("/ws", wstest.Header("Authorization", "Bearer "+wrongKid)), http.StatusUnauthorized)
	unknown := sign(t, jwt.SigningMethodHS256, cur, claims, map[string]any{"kid": "1999"})
	h.refused(t, ts.Communicator("/ws", wstest.Header("Authorization", "Bearer "+unknown)), http.StatusUnauthorized)
}

func TestJWTOptionalAndClaimsUser(t *testing.T) {
	t.Parallel()
	secret := []byte("an-hmac-secret-of-32-bytes-long!")
	h := newHarness(t)
	h.engine.GET("/ws",
		middleware.JWT(middleware.JWTConfig{Algorithms: []string{"HS256"}, Key: secret, Optional: true}),
		middleware.LoadUser(middleware.ClaimsUser(func(ctx context.Context, c jwt.MapClaims) (string, bool, error) {
			sub, _ := c["sub"].(string)
			return sub, sub != "", nil
		})),
		h.mount(func(p *probe) map[string]any {
			u, ok := middleware.UserFrom[string](p.Scope())
			return map[string]any{"user": u, "ok": ok}
		}))
	ts := h.start(t)
	seen, _ := h.accepted(t, ts.Communicator("/ws"))
	if seen["ok"] != false {
		t.Fatalf("anonymous: %v", seen)
	}
	tok := sign(t, jwt.SigningMethodHS256, secret, jwt.MapClaims{"sub": "bob", "exp": time.Now().Add(time.Hour).Unix()}, nil)
	seen, _ = h.accepted(t, ts.Communicator("/ws", wstest.Header("Authorization", "Bearer "+tok)))
	if seen["user"] != "bob" {
		t.Fatalf("claims user: %v", seen)
	}
	// Optional does not let a bad token through.
	h.refused(t, ts.Communicator("/ws", wstest.Header("Authorization", "Bearer "+tok+"x")), http.StatusUnauthorized)
}

func TestJWTConfigIsCheckedAtConstruction(t *testing.T) {
	t.Parallel()
	priv := testRSAKey(t)
	bad := map[string]struct {
		cfg   middleware.JWTConfig
		field string
	}{
		"no algorithms":     {middleware.JWTConfig{Key: []byte("k")}, "Algorithms"},
		"none":              {middleware.JWTConfig{Algorithms: []string{"none"}, Key: []byte("k")}, "Algorithms"},
		"mixed families":    {middleware.JWTConfig{Algorithms: []string{"HS256", "RS256"}, Keyfunc: func(*jwt.Token) (any, error) { return nil, nil }}, "Algorithms"},
		"no key":            {middleware.JWTConfig{Algorithms: []string{"HS256"}}, "Key"},
		"rsa key for HS256": {middleware.JWTConfig{Algorithms: []string{"HS256"}, Key: &priv.PublicKey}, "Key"},
		"string secret":     {middleware.JWTConfig{Algorithms: []string{"HS256"}, Key: "secret"}, "Key"},
		"cookie no name":    {middleware.JWTConfig{Algorithms: []string{"HS256"}, Key: []byte("k"), Sources: []middleware.TokenSource{middleware.FromCookie}}, "Cookie"},
		"negative leeway":   {middleware.JWTConfig{Algorithms: []string{"HS256"}, Key: []byte("k"), Leeway: -time.Second}, "Leeway"},
	}
	for name, tc := range bad {
		t.Run(name, func(t *testing.T) {
			mustPanicWithConfigError(t, "middleware.JWTConfig."+tc.field, func() { middleware.JWT(tc.cfg) })
		})
	}
}
