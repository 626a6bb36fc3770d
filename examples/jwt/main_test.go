package main

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"go.uber.org/goleak"

	"ginws.dev/ginws"
	"ginws.dev/ginws/wstest"
)

func TestMain(m *testing.M) {
	gin.SetMode(gin.TestMode)
	goleak.VerifyTestMain(m)
}

func TestJWTExample(t *testing.T) {
	secret := []byte("0123456789abcdef0123456789abcdef")
	r, ws := NewApp(secret, slog.New(slog.DiscardHandler))
	ts := wstest.NewServer(t, r)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	defer ws.Shutdown(ctx)

	resp, err := http.Get(ts.URL + "/token?user=ada")
	if err != nil {
		t.Fatal(err)
	}
	var tok struct{ Token string }
	if err := json.NewDecoder(resp.Body).Decode(&tok); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()

	// A browser: the token as a subprotocol; the server must echo "bearer".
	browser := ts.Communicator("/ws/notifications", wstest.Subprotocols("bearer", tok.Token))
	res := browser.MustConnect(ctx)
	if res.Subprotocol != "bearer" {
		t.Fatalf("chosen subprotocol %q, want bearer", res.Subprotocol)
	}
	var hello map[string]string
	if err := browser.ReceiveJSON(ctx, &hello); err != nil || hello["user"] != "ada" {
		t.Fatalf("hello: %v %v", hello, err)
	}
	// A server-side client: the Authorization header.
	api := ts.Communicator("/ws/notifications", wstest.Header("Authorization", "Bearer "+tok.Token), wstest.Origin(""))
	api.MustConnect(ctx)
	if err := api.ReceiveJSON(ctx, &hello); err != nil {
		t.Fatal(err)
	}
	// An authenticated HTTP call notifies every connection of the user.
	req, _ := http.NewRequest(http.MethodPost, ts.URL+"/notify/ada", strings.NewReader(url.Values{"message": {"ding"}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Authorization", "Bearer "+tok.Token)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("notify: %d", resp.StatusCode)
	}
	for _, c := range []*wstest.Communicator{browser, api} {
		var n map[string]string
		if err := c.ReceiveJSON(ctx, &n); err != nil || n["message"] != "ding" {
			t.Fatalf("notification: %v %v", n, err)
		}
	}
	// A token in its last seconds (within the 30 s leeway) admits a socket that is closed with
	// 3000 when it ends; a socket that refreshed first stays. A JWT's expiry is in whole seconds,
	// so -24 s leaves 5 to 6 s, not less: at -29 s the time left could be a few milliseconds,
	// and the socket that was to refresh was closed first; -27 s left a thin 2 to 3 s for two
	// handshakes and a refresh under -race on a busy machine.
	ending, _ := Mint(secret, "ada", -24*time.Second)
	doomed := ts.Communicator("/ws/notifications", wstest.Header("Authorization", "Bearer "+ending))
	doomed.MustConnect(ctx)
	kept := ts.Communicator("/ws/notifications", wstest.Header("Authorization", "Bearer "+ending))
	kept.MustConnect(ctx)
	for _, c := range []*wstest.Communicator{doomed, kept} {
		if err := c.ReceiveJSON(ctx, &hello); err != nil {
			t.Fatal(err)
		}
	}
	if err := kept.SendJSON(ctx, map[string]string{"type": "refresh", "token": tok.Token}); err != nil {
		t.Fatal(err)
	}
	var refreshed map[string]string
	if err := kept.ReceiveJSON(ctx, &refreshed); err != nil || refreshed["type"] != "refreshed" {
		t.Fatalf("refresh: %v %v", refreshed, err)
	}
	if code, reason, err := doomed.WaitClosed(ctx); err != nil || code != ginws.CloseTokenExpired || reason != "token expired" {
		t.Fatalf("expired socket: closed with %d %q (%v), want 3000 \"token expired\"", code, reason, err)
	}
	if err := kept.SendJSON(ctx, map[string]string{"after": "expiry"}); err != nil {
		t.Fatal(err)
	}
	var echo map[string]any
	if err := kept.ReceiveJSON(ctx, &echo); err != nil || echo["type"] != "echo" {
		t.Fatalf("the refreshed socket after the old token's expiry: %v %v", echo, err)
	}
	bob, _ := Mint(secret, "bob", time.Hour)
	if err := kept.SendJSON(ctx, map[string]string{"type": "refresh", "token": bob}); err != nil {
		t.Fatal(err)
	}
	if err := kept.ReceiveJSON(ctx, &refreshed); err != nil || refreshed["type"] != "error" {
		t.Fatalf("refresh with another user's token: %v %v", refreshed, err)
	}

	// Refusals: no token, a token from another secret, an expired token.
	other, _ := Mint([]byte("another-secret-another-secret-xx"), "ada", time.Minute)
	expired, _ := Mint(secret, "ada", -time.Hour)
	for name, c := range map[string]*wstest.Communicator{
		"none":    ts.Communicator("/ws/notifications"),
		"forged":  ts.Communicator("/ws/notifications", wstest.Subprotocols("bearer", other)),
		"expired": ts.Communicator("/ws/notifications", wstest.Header("Authorization", "Bearer "+expired)),
	} {
		res, err := c.Connect(ctx)
		if err != nil || res.Accepted || res.Status != http.StatusUnauthorized {
			t.Fatalf("%s: %+v %v, want 401", name, res, err)
		}
	}
}
