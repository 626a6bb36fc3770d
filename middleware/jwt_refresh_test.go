package middleware_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"ginws.dev/ginws"
	"ginws.dev/ginws/wstest"
	"ginws.dev/middleware"
)

// refreshProbe answers {"refresh": TOKEN} with {"ok": true} or {"error": reason}.
type refreshProbe struct {
	ginws.JSONConsumer[map[string]string]
	ended chan int
}

func (p *refreshProbe) ReceiveJSON(ctx context.Context, in map[string]string) error {
	if _, err := middleware.RefreshToken(p.Conn, in["refresh"]); err != nil {
		if !errors.Is(err, middleware.ErrRefreshRefused) {
			return err
		}
		return p.SendJSON(map[string]any{"error": err.Error()})
	}
	return p.SendJSON(map[string]any{"ok": true})
}

func (p *refreshProbe) Disconnect(ctx context.Context, code int) { p.ended <- code }

func refreshApp(t *testing.T, secret []byte) (*wstest.Server, chan int) {
	h := newHarness(t)
	ended := make(chan int, 4)
	h.engine.GET("/ws", middleware.JWT(middleware.JWTConfig{
		Algorithms: []string{"HS256"}, Key: secret, Issuer: "iss", Audience: "aud",
	}), h.ws.Mount(func() ginws.Consumer { return &refreshProbe{ended: ended} }))
	return h.start(t), ended
}

func token(t *testing.T, secret []byte, sub string, ttl time.Duration, edit func(jwt.MapClaims)) string {
	claims := jwt.MapClaims{"sub": sub, "iss": "iss", "aud": "aud", "exp": time.Now().Add(ttl).Unix()}
	if edit != nil {
		edit(claims)
	}
	return sign(t, jwt.SigningMethodHS256, secret, claims, nil)
}

// A socket whose token expires is closed with 3000 "token expired".
func TestJWTExpiryClosesSocket(t *testing.T) {
	t.Parallel()
	secret := []byte("0123456789abcdef0123456789abcdef")
	ts, ended := refreshApp(t, secret)
	// exp is in whole seconds: 6 s leaves 5 to 6 s to connect, on a loaded machine too.
	c := ts.Communicator("/ws", wstest.Header("Authorization", "Bearer "+token(t, secret, "ada", 6*time.Second, nil)))
	c.MustConnect(ctxT(t))
	code, reason, err := c.WaitClosed(ctxT(t))
	if err != nil || code != ginws.CloseTokenExpired || reason != "token expired" {
		t.Fatalf("closed with %d %q (%v), want 3000 \"token expired\"", code, reason, err)
	}
	if got := <-ended; got != ginws.CloseTokenExpired {
		t.Fatalf("Disconnect got %d", got)
	}
}

// A fresh token that passes the same rules moves the deadline; tokens that do not are refused and
// leave it where it was.
func TestJWTRefresh(t *testing.T) {
	t.Parallel()
	secret := []byte("0123456789abcdef0123456789abcdef")
	ts, _ := refreshApp(t, secret)
	ctx := ctxT(t)

	refused := map[string]string{
		"another subject": token(t, secret, "eve", time.Hour, nil),
		"wrong audience":  token(t, secret, "ada", time.Hour, func(c jwt.MapClaims) { c["aud"] = "other" }),
		"wrong issuer":    token(t, secret, "ada", time.Hour, func(c jwt.MapClaims) { c["iss"] = "other" }),
		"expired":         token(t, secret, "ada", -time.Minute, nil),
		"no exp":          token(t, secret, "ada", time.Hour, func(c jwt.MapClaims) { delete(c, "exp") }),
		"other algorithm": sign(t, jwt.SigningMethodHS384, secret, jwt.MapClaims{"sub": "ada", "iss": "iss", "aud": "aud", "exp": time.Now().Add(time.Hour).Unix()}, nil),
		"other key":       token(t, []byte("another secret, 32 bytes or more"), "ada", time.Hour, nil),
		"garbage":         "not.a.token",
	}
	// exp is in whole seconds: 6 s leaves 5 to 6 s for the refused refreshes (and, below, for the
	// fresh socket's refresh), on a loaded machine too. (3 s left 2 to 3 s, a thin margin under
	// -race with every package's tests running.)
	stale := ts.Communicator("/ws", wstest.Header("Authorization", "Bearer "+token(t, secret, "ada", 6*time.Second, nil)))
	stale.MustConnect(ctx)
	for why, tok := range refused {
		if err := stale.SendJSON(ctx, map[string]string{"refresh": tok}); err != nil {
			t.Fatal(err)
		}
		var got map[string]any
		if err := stale.ReceiveJSON(ctx, &got); err != nil {
			t.Fatal(err)
		}
		if got["error"] == nil {
			t.Fatalf("%s: refresh accepted", why)
		}
	}
	code, _, err := stale.WaitClosed(ctx)
	if err != nil || code != ginws.CloseTokenExpired {
		t.Fatalf("after refused refreshes: closed with %d (%v), want 3000 at the first token's expiry", code, err)
	}

	fresh := ts.Communicator("/ws", wstest.Header("Authorization", "Bearer "+token(t, secret, "ada", 6*time.Second, nil)))
	fresh.MustConnect(ctx)
	if err := fresh.SendJSON(ctx, map[string]string{"refresh": token(t, secret, "ada", time.Hour, nil)}); err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := fresh.ReceiveJSON(ctx, &got); err != nil || got["ok"] != true {
		t.Fatalf("refresh: %v, %v", got, err)
	}
	if err := fresh.ReceiveNothing(ctx, 6*time.Second); err != nil { // past the first token's exp
		t.Fatalf("the refreshed socket: %v", err)
	}
}
