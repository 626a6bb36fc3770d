package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"ginws.dev/ginws/redislayer"
	"ginws.dev/ginws/redislayer/redistest"
)

// Two chat processes on one Redis (DB 3) are one chat: a client signed in on process A gets what a
// client on process B sends to the room, and the other way round.
func TestMultiProcessChat(t *testing.T) {
	t.Parallel()
	redistest.Need(t)
	bin := filepath.Join(t.TempDir(), "chat")
	build := exec.Command("go", "build", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	prefix := fmt.Sprintf("asgichattest%08x:", rand.Uint32())
	layerURL := "redis://127.0.0.1:6379/3?prefix=" + prefix
	t.Cleanup(func() { flushPrefix(t, prefix) })
	secret := "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"
	a := startChat(t, bin, layerURL, secret)
	b := startChat(t, bin, layerURL, secret)

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	alice := dialRoom(ctx, t, a, "alice", "multi")
	bob := dialRoom(ctx, t, b, "bob", "multi")

	for _, tc := range []struct {
		from *websocket.Conn
		user string
		text string
	}{{alice, "alice", "hello from A"}, {bob, "bob", "hello from B"}} {
		if err := tc.from.WriteJSON(map[string]string{"message": tc.text}); err != nil {
			t.Fatal(err)
		}
		for name, c := range map[string]*websocket.Conn{"alice (process A)": alice, "bob (process B)": bob} {
			var got chatOut
			_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
			for got.Event != "" || got.Message == "" {
				got = chatOut{}
				if err := c.ReadJSON(&got); err != nil {
					t.Fatalf("%s waiting for %q: %v", name, tc.text, err)
				}
			}
			if got.Message != tc.text || got.User != tc.user {
				t.Fatalf("%s got %+v, want %q from %s", name, got, tc.text, tc.user)
			}
		}
	}
}

// Presence across two chat processes on one Redis: who is in a room is the same on both, a user
// joining on one is announced on the other, and when a process is killed (SIGKILL: it untracks
// nothing) its users leave the room on the survivor within -presence-ttl.
func TestMultiProcessPresence(t *testing.T) {
	t.Parallel()
	redistest.Need(t)
	bin := filepath.Join(t.TempDir(), "chat")
	build := exec.Command("go", "build", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	prefix := fmt.Sprintf("asgichattest%08x:", rand.Uint32())
	layerURL := "redis://127.0.0.1:6379/3?prefix=" + prefix
	t.Cleanup(func() { flushPrefix(t, prefix) })
	secret := "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"
	// A live process's entries count as gone after TTL/2 without a refresh (refreshes come every
	// TTL/8): with 4 s, a 2 s stall of the machine dropped a live user from the list. 12 s
	// survives a 6 s stall, and a killed process's users are still gone well within the test.
	const ttl = 12 * time.Second
	a, _ := startChatProc(t, bin, layerURL, secret, "", "-presence-ttl", ttl.String())
	b, procB := startChatProc(t, bin, layerURL, secret, "", "-presence-ttl", ttl.String())

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	// The rule is "gone within the TTL"; slack is what the sweep (every TTL/8) and the delivery
	// may add on a machine where every package's tests run at once. 1 s of it was thin.
	const slack = 5 * time.Second
	next := func(name string, c *websocket.Conn) chatOut {
		t.Helper()
		var got chatOut
		_ = c.SetReadDeadline(time.Now().Add(ttl + 2*slack))
		if err := c.ReadJSON(&got); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		return got
	}
	alice, aliceHTTP := dialRoomClient(ctx, t, a, "alice", "pres")
	if got := next("alice", alice); got.Event != "members" || fmt.Sprint(got.Users) != "[alice]" {
		t.Fatalf("alice's first frame: %+v", got)
	}
	bob := dialRoom(ctx, t, b, "bob", "pres")
	if got := next("bob", bob); got.Event != "members" || fmt.Sprint(got.Users) != "[alice bob]" {
		t.Fatalf("bob's first frame (process B): %+v, want alice and bob", got)
	}
	if got := next("alice", alice); got.Event != "join" || got.User != "bob" {
		t.Fatalf("alice (process A) got %+v, want bob's join", got)
	}
	bob2 := dialRoom(ctx, t, a, "bob", "pres") // bob's second tab, on process A
	if got := next("bob's second tab", bob2); got.Event != "members" || fmt.Sprint(got.Users) != "[alice bob]" {
		t.Fatalf("bob's second tab: %+v", got)
	}
	membersOn := func(addr string) string {
		t.Helper()
		resp, err := aliceHTTP.Get("http://" + addr + "/rooms/pres/members")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var body bytes.Buffer
		_, _ = body.ReadFrom(resp.Body)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET /rooms/pres/members on %s: %d %s", addr, resp.StatusCode, body.String())
		}
		return strings.TrimSpace(body.String())
	}
	const both = `{"members":[{"user":"alice","connections":1},{"user":"bob","connections":2}]}`
	for _, addr := range []string{a, b} {
		if got := membersOn(addr); got != both {
			t.Fatalf("members on %s: %s, want %s", addr, got, both)
		}
	}

	// Process B dies: bob's tab there is gone, his tab on A stays, so nobody leaves.
	if err := procB.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	const afterKill = `{"members":[{"user":"alice","connections":1},{"user":"bob","connections":1}]}`
	for membersOn(a) != afterKill {
		if time.Since(killed) > ttl+slack {
			t.Fatalf("members on A %v after B was killed: %s, want %s", time.Since(killed), membersOn(a), afterKill)
		}
		time.Sleep(100 * time.Millisecond)
	}
	_ = alice.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	var extra chatOut
	if err := alice.ReadJSON(&extra); err == nil {
		t.Fatalf("alice got %+v after one of bob's two tabs died", extra)
	}
	t.Logf("B's connection was gone from A's list %v after SIGKILL (TTL %v)", time.Since(killed).Round(10*time.Millisecond), ttl)

	// Now a user whose only connection is on a process that gets killed: carol on C.
	c, procC := startChatProc(t, bin, layerURL, secret, "", "-presence-ttl", ttl.String())
	alice2 := dialRoom(ctx, t, a, "alice", "pres") // a fresh socket for alice: the old one timed out reading
	if got := next("alice", alice2); got.Event != "members" {
		t.Fatalf("alice's new socket: %+v", got)
	}
	carol := dialRoom(ctx, t, c, "carol", "pres")
	if got := next("carol", carol); got.Event != "members" || fmt.Sprint(got.Users) != "[alice bob carol]" {
		t.Fatalf("carol's first frame: %+v", got)
	}
	if got := next("alice", alice2); got.Event != "join" || got.User != "carol" {
		t.Fatalf("alice got %+v, want carol's join", got)
	}
	if err := procC.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	killed = time.Now()
	if got := next("alice", alice2); got.Event != "leave" || got.User != "carol" {
		t.Fatalf("alice got %+v, want carol's leave", got)
	}
	if d := time.Since(killed); d > ttl+slack {
		t.Fatalf("carol's leave came %v after her process was killed; -presence-ttl is %v", d, ttl)
	} else {
		t.Logf("carol's leave reached alice %v after SIGKILL (TTL %v)", d.Round(10*time.Millisecond), ttl)
	}
}

// startChat runs the chat binary on a free port until the test ends.
func startChat(t *testing.T, bin, lay, secret string) string {
	t.Helper()
	addr, _ := startChatProc(t, bin, lay, secret, "")
	return addr
}

// Signing out on process A closes that session's sockets on A and on B with 4001 "signed out";
// another session of the same user and other users' sockets stay open.
func TestMultiProcessSignOut(t *testing.T) {
	t.Parallel()
	redistest.Need(t)
	bin := filepath.Join(t.TempDir(), "chat")
	build := exec.Command("go", "build", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	prefix := fmt.Sprintf("asgichattest%08x:", rand.Uint32())
	layerURL := "redis://127.0.0.1:6379/3?prefix=" + prefix
	t.Cleanup(func() { flushPrefix(t, prefix) })
	secret := "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"
	a := startChat(t, bin, layerURL, secret)
	b := startChat(t, bin, layerURL, secret)

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	session := signInAt(t, a, "alice")
	onA := dialWith(ctx, t, a, "kick", session)
	onB := dialWith(ctx, t, b, "kick", session)
	laptop := dialWith(ctx, t, b, "kick", signInAt(t, b, "alice")) // alice's other session
	bob := dialRoom(ctx, t, b, "bob", "kick")

	resp, err := noRedirect(session).Post("http://"+a+"/logout", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("logout: HTTP %d", resp.StatusCode)
	}
	for name, c := range map[string]*websocket.Conn{"process A": onA, "process B": onB} {
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		var err error
		for err == nil { // presence frames may come first
			_, _, err = c.ReadMessage()
		}
		var ce *websocket.CloseError
		if !errors.As(err, &ce) || ce.Code != 4001 || ce.Text != "signed out" {
			t.Fatalf("the signed-out session's socket on %s ended with %v, want close 4001 \"signed out\"", name, err)
		}
	}
	if err := bob.WriteJSON(map[string]string{"message": "anyone here?"}); err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]*websocket.Conn{"bob": bob, "alice's other session": laptop} {
		got, err := readChat(c, 10*time.Second)
		if err != nil || got.Message != "anyone here?" {
			t.Fatalf("%s: got %+v, %v", name, got, err)
		}
	}
}

// startChatProc runs the chat binary with extra flags on addr (a free port if empty) until the
// test ends (or the test kills it) and returns its address and process.
func startChatProc(t *testing.T, bin, lay, secret, addr string, extra ...string) (string, *exec.Cmd) {
	t.Helper()
	if addr == "" {
		addr = freeAddr(t)
	}
	var out syncBuffer
	cmd := exec.Command(bin, append([]string{"-addr", addr, "-layer", lay, "-secret", secret}, extra...)...)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("chat on %s said:\n%s", addr, out.String())
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
			return addr, cmd
		}
		if time.Now().After(deadline) {
			t.Fatalf("chat did not listen on %s: %v\n%s", addr, err, out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// dialRoom signs user in on the server at addr (POST /login) and opens the room's socket.
func dialRoom(ctx context.Context, t *testing.T, addr, user, room string) *websocket.Conn {
	t.Helper()
	conn, _ := dialRoomClient(ctx, t, addr, user, room)
	return conn
}

// dialRoomClient is dialRoom that also returns the signed-in HTTP client.
func dialRoomClient(ctx context.Context, t *testing.T, addr, user, room string) (*websocket.Conn, *http.Client) {
	t.Helper()
	jar := signInAt(t, addr, user)
	return dialWith(ctx, t, addr, room, jar), noRedirect(jar)
}

// readChat reads the next frame that is not presence's (members, join, leave) within d.
func readChat(c *websocket.Conn, d time.Duration) (chatOut, error) {
	_ = c.SetReadDeadline(time.Now().Add(d))
	for {
		var got chatOut
		if err := c.ReadJSON(&got); err != nil || !presenceFrame(got.Event) {
			return got, err
		}
	}
}

// signInAt signs user in on the server at addr and returns the session's cookies.
func signInAt(t *testing.T, addr, user string) http.CookieJar {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	resp, err := noRedirect(jar).PostForm("http://"+addr+"/login", url.Values{"username": {user}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("login on %s: HTTP %d", addr, resp.StatusCode)
	}
	return jar
}

func noRedirect(jar http.CookieJar) *http.Client {
	return &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// dialWith opens the room's socket on the server at addr with the session in jar (the cookie is
// signed with the shared secret, so every process takes it).
func dialWith(ctx context.Context, t *testing.T, addr, room string, jar http.CookieJar) *websocket.Conn {
	t.Helper()
	base := "http://" + addr
	h := http.Header{"Origin": {base}}
	d := websocket.Dialer{Jar: jar, HandshakeTimeout: 10 * time.Second}
	conn, resp, err := d.DialContext(ctx, "ws://"+addr+"/ws/chat/"+room+"/", h)
	if err != nil {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		t.Fatalf("dial %s: %v (HTTP %d)", addr, err, status)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

func flushPrefix(t *testing.T, prefix string) {
	l, err := redislayer.New(redislayer.Config{Hosts: []string{"redis://127.0.0.1:6379/3"}, Prefix: prefix})
	if err != nil {
		t.Error(err)
		return
	}
	defer l.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := l.Flush(ctx); err != nil {
		t.Error(err)
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
