package main

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// TestCentrifugeContract checks what centrifugechat delivers against the chat contract, on the wire:
// a member's publish reaches every member of the room, the sender included, as a publication whose
// data is the sent {"message": ...} and whose info carries the sender's user from the session
// cookie; a member of another room gets nothing; a subscription to another room's channel and a
// socket without the cookie are refused.
func TestCentrifugeContract(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs centrifugechat")
	}
	repo, err := findRepo()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	targets, err := buildTargets(ctx, repo, t.TempDir(), []string{"centrifuge"})
	if err != nil {
		t.Fatal(err)
	}
	p, err := targets["centrifuge"].Start(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Stop()
	hc := &http.Client{Timeout: 10 * time.Second}
	defer hc.CloseIdleConnections()

	if _, resp, err := dialer.DialContext(ctx, "ws://"+p.Addr+"/ws/chat/a/", nil); err == nil || resp == nil || resp.StatusCode != http.StatusForbidden {
		t.Fatalf("a socket without the session cookie: err %v, response %v; want 403", err, resp)
	}

	a, b := newRoom("a", false), newRoom("b", false)
	alice, err := connect(ctx, hc, p.Addr, a, "alice", wireCentrifuge)
	if err != nil {
		t.Fatal(err)
	}
	defer alice.close()
	carol, err := connect(ctx, hc, p.Addr, b, "carol", wireCentrifuge)
	if err != nil {
		t.Fatal(err)
	}
	defer carol.close()

	// bob reads his socket himself, to see the push as it is sent.
	cookie, err := login(ctx, hc, p.Addr, "bob")
	if err != nil {
		t.Fatal(err)
	}
	conn, _, err := dialer.DialContext(ctx, "ws://"+p.Addr+"/ws/chat/a/", http.Header{"Cookie": {cookie}})
	if err != nil {
		t.Fatal(err)
	}
	bob := &Client{room: a, conn: conn, wire: wireCentrifuge}
	if err := bob.centrifugeJoin(); err != nil {
		t.Fatal(err)
	}
	defer conn.Close()

	if err := alice.send(1, "pad"); err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, data, err := conn.ReadMessage()
	if err != nil {
		t.Fatal(err)
	}
	var push struct {
		Push struct {
			Channel string `json:"channel"`
			Pub     struct {
				Data struct {
					Message string `json:"message"`
				} `json:"data"`
				Info struct {
					User string `json:"user"`
				} `json:"info"`
			} `json:"pub"`
		} `json:"push"`
	}
	t.Logf("bob got %s", data)
	if err := json.Unmarshal(data, &push); err != nil {
		t.Fatalf("%s: %v", data, err)
	}
	if pub := push.Push.Pub; push.Push.Channel != "a" || !strings.HasPrefix(pub.Data.Message, "1:") || !strings.HasSuffix(pub.Data.Message, ":pad") || pub.Info.User != "alice" {
		t.Fatalf("bob got %s; want alice's message in channel a with user alice", data)
	}
	if line, ok := bob.centrifugeLine(data); !ok || bob.bad.Load() != 0 {
		t.Fatalf("the adapter does not read %s as a message", data)
	} else if seq, _, ok := parseMessage(line); !ok || seq != 1 {
		t.Fatalf("parseMessage(%s) = %d, %v", line, seq, ok)
	}

	// The sender receives its own message, skipping its publish reply; carol, in room b, nothing.
	a.sent.Store(1)
	a.Clients = []*Client{alice}
	b.Clients = []*Client{carol}
	if lost, err := verify(ctx, []*Room{a}, 10*time.Second); err != nil {
		t.Fatalf("alice did not get her own message: %d lost, %v", lost, err)
	}
	time.Sleep(200 * time.Millisecond)
	if n, bad := carol.recv.Load(), carol.bad.Load(); n != 0 || bad != 0 {
		t.Fatalf("carol, in room b, got %d messages and %d garbled", n, bad)
	}

	// A socket of room a may not subscribe to channel b.
	_ = conn.WriteMessage(websocket.TextMessage, []byte(`{"id":7,"subscribe":{"channel":"b"}}`))
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second)) // the first one may be used up
	_, data, err = conn.ReadMessage()
	if err != nil || !strings.Contains(string(data), `"id":7`) || !strings.Contains(string(data), `"error":`) {
		t.Fatalf("subscribing room a's socket to channel b: %s, %v; want an error reply", data, err)
	}
}

// The report's centrifuge target gives a verdict only at the size the issue states it for.
func TestCentrifugeTarget(t *testing.T) {
	at := func(server string, conns, rooms int, cpu time.Duration) Result {
		return Result{Mode: "fanout", Server: server, Conns: conns, Rooms: rooms, Deliveries: 1000, CPU: cpu}
	}
	for _, tc := range []struct {
		g, c Result
		want string
	}{
		{at("ginws", 10000, 100, 500*time.Microsecond), at("centrifuge", 10000, 100, time.Millisecond), "PASS target: ginws CPU per delivery ≤ 0.6× centrifuge's at 10000 sockets in 100 rooms (0.50×)"},
		{at("ginws", 10000, 100, 700*time.Microsecond), at("centrifuge", 10000, 100, time.Millisecond), "MISS target: ginws CPU per delivery ≤ 0.6× centrifuge's at 10000 sockets in 100 rooms (0.70×)"},
		{at("ginws", 1000, 10, 500*time.Microsecond), at("centrifuge", 1000, 10, time.Millisecond), "target ginws CPU per delivery ≤ 0.6× centrifuge's is for 10000 sockets in 100 rooms (-conns 10000 -rooms 100); here, at 1000 in 10: 0.50×"},
	} {
		if got := centrifugeTarget(tc.g, tc.c); got != tc.want {
			t.Errorf("centrifugeTarget = %q\nwant %q", got, tc.want)
		}
	}
}
