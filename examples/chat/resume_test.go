package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"ginws.dev/ginws/redislayer/redistest"
	"ginws.dev/ginws/wstest"
)

// A page that reconnects with ?since=ID gets the room's messages after ID, then live ones; with an
// ID the history cannot cover, {"event": "history-gap"} comes first.
func TestChatResume(t *testing.T) {
	t.Parallel()
	ts := startApp(t)
	ctx := ctxT(t)
	alice := ts.Communicator("/ws/chat/resume/", wstest.Jar(signIn(t, ts, "alice").Jar))
	alice.MustConnect(ctx)
	var ids []string
	for i := 1; i <= 3; i++ {
		if err := alice.SendJSON(ctx, map[string]string{"message": fmt.Sprint("m", i)}); err != nil {
			t.Fatal(err)
		}
		var got chatOut
		if err := receiveChat(ctx, alice, &got); err != nil {
			t.Fatal(err)
		}
		if got.ID == "" || got.Message != fmt.Sprint("m", i) {
			t.Fatalf("frame %d: %+v, want m%d with an id", i, got, i)
		}
		ids = append(ids, got.ID)
	}
	bobJar := wstest.Jar(signIn(t, ts, "bob").Jar)
	bob := ts.Communicator("/ws/chat/resume/?since="+url.QueryEscape(ids[0]), bobJar)
	bob.MustConnect(ctx)
	for i, want := range []string{"m2", "m3"} {
		var got chatOut
		if err := receiveChat(ctx, bob, &got); err != nil {
			t.Fatal(err)
		}
		if got.Message != want || got.ID != ids[i+1] {
			t.Fatalf("replayed %+v, want %s with id %s", got, want, ids[i+1])
		}
	}
	// The replay was queued in Connect, before the socket was tracked: who is here comes next.
	var members chatOut
	if err := bob.ReceiveJSON(ctx, &members); err != nil || members.Event != "members" {
		t.Fatalf("after the replay: %+v %v, want the members frame", members, err)
	}
	if err := bob.ReceiveNothing(ctx, 100*time.Millisecond); err != nil {
		t.Fatalf("more than the missed messages: %v", err)
	}
	for _, since := range []string{"7-otherepoch", "garbage"} {
		c := ts.Communicator("/ws/chat/resume/?since="+since, bobJar)
		c.MustConnect(ctx)
		var got chatOut
		if err := receiveChat(ctx, c, &got); err != nil || got.Event != "history-gap" {
			t.Fatalf("since=%s: first frame %+v %v, want history-gap", since, got, err)
		}
	}
}

// TestChatResumeAcrossKill counts messages across a chat process killed with SIGKILL and
// restarted, with the Redis layer: a sender on process A sends without pause; a reader on process
// B resumes on the restarted B with ?since= the last id it saw. Every message the sender saw
// accepted must reach the reader exactly once, live or recovered.
func TestChatResumeAcrossKill(t *testing.T) {
	t.Parallel()
	redistest.Need(t)
	bin := filepath.Join(t.TempDir(), "chat")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	prefix := fmt.Sprintf("asgichatresume%08x:", time.Now().UnixNano()&0xffffffff)
	layerURL := "redis://127.0.0.1:6379/3?prefix=" + prefix
	t.Cleanup(func() { flushPrefix(t, prefix) })
	secret := "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"
	a := startChat(t, bin, layerURL, secret)
	bAddr, bProc := startChatProc(t, bin, layerURL, secret, "")

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	sender := dialRoom(ctx, t, a, "sender", "resume")
	reader := dialRoom(ctx, t, bAddr, "reader", "resume")

	// The sender counts what the layer accepted: its own echo (an {"error"} means not sent).
	var mu sync.Mutex
	accepted := map[string]bool{}
	refused := 0
	const total = 600
	senderDone := make(chan error, 1)
	go func() {
		var read sync.WaitGroup
		read.Add(1)
		go func() {
			defer read.Done()
			for {
				var f chatOut
				_ = sender.SetReadDeadline(time.Now().Add(20 * time.Second))
				if err := sender.ReadJSON(&f); err != nil {
					return
				}
				if presenceFrame(f.Event) {
					continue
				}
				mu.Lock()
				if f.Error != "" {
					refused++
				} else {
					accepted[f.Message] = true
				}
				n := len(accepted) + refused
				mu.Unlock()
				if n == total {
					return
				}
			}
		}()
		for i := 0; i < total; i++ {
			if err := sender.WriteJSON(map[string]string{"message": fmt.Sprint("n", i)}); err != nil {
				senderDone <- err
				return
			}
			time.Sleep(5 * time.Millisecond)
		}
		read.Wait()
		senderDone <- nil
	}()

	seen := map[string]int{}
	live, recovered := 0, 0
	lastID := ""
	read := func(c *websocket.Conn, until func() bool, counter *int) error {
		// Each read waits up to 30 s: a bound on a hang. The loops end on counts, so a long
		// deadline costs nothing when all is well; 2 s failed once when the machine stalled.
		for !until() {
			var f chatOut
			_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
			if err := c.ReadJSON(&f); err != nil {
				return err
			}
			if presenceFrame(f.Event) {
				continue
			}
			if f.Event == "history-gap" {
				t.Errorf("history-gap after a resume within the history window")
				continue
			}
			seen[f.Message]++
			*counter++
			lastID = f.ID
		}
		return nil
	}
	// Live until 200 messages, then the reader's process dies.
	if err := read(reader, func() bool { return live >= 200 }, &live); err != nil {
		t.Fatal(err)
	}
	_ = bProc.Process.Signal(syscall.SIGKILL)
	_, _ = bProc.Process.Wait()
	time.Sleep(300 * time.Millisecond) // the sender goes on meanwhile
	bAddr, _ = startChatProc(t, bin, layerURL, secret, bAddr)
	resumed := dialRoomSince(ctx, t, bAddr, "reader", "resume", lastID)
	if err := <-senderDone; err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	want := len(accepted)
	mu.Unlock()
	done := func() bool {
		for m := range accepted {
			if seen[m] == 0 {
				return false
			}
		}
		return true
	}
	err := read(resumed, done, &recovered)
	lost, dups := 0, 0
	for m := range accepted {
		switch n := seen[m]; {
		case n == 0:
			lost++
		case n > 1:
			dups += n - 1
		}
	}
	t.Logf("sent %d (accepted %d, refused %d); reader: live %d, after the resume %d, lost %d, duplicates %d",
		total, want, refused, live, recovered, lost, dups)
	if err != nil && lost > 0 {
		t.Errorf("reading after the resume: %v", err)
	}
	if lost != 0 || dups != 0 {
		t.Fatalf("lost %d, duplicates %d; want 0 and 0", lost, dups)
	}
}

// freeAddr is an address for a chat process, which some tests SIGKILL and start again on it.
func freeAddr(t *testing.T) string {
	t.Helper()
	return redistest.RestartableAddr(t) // some of these servers are restarted on the same address
}

// dialRoomSince is dialRoom with ?since=id.
func dialRoomSince(ctx context.Context, t *testing.T, addr, user, room, id string) *websocket.Conn {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	hc := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	base := "http://" + addr
	resp, err := hc.PostForm(base+"/login", url.Values{"username": {user}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	u, _ := url.Parse(base)
	h := http.Header{"Origin": {base}}
	for _, c := range jar.Cookies(u) {
		h.Add("Cookie", c.String())
	}
	conn, _, err := websocket.DefaultDialer.DialContext(ctx, "ws://"+addr+"/ws/chat/"+room+"/?since="+url.QueryEscape(id), h)
	if err != nil {
		t.Fatalf("dial %s since %s: %v", addr, id, err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// GET /events/chat/ROOM/ streams the room's messages as server-sent events with the socket's JSON;
// Last-Event-ID resumes; anonymous requests get 403.
func TestChatEventStream(t *testing.T) {
	t.Parallel()
	ts := startApp(t)
	ctx := ctxT(t)
	if resp, err := http.Get(ts.URL + "/events/chat/sse/"); err != nil || resp.StatusCode != http.StatusForbidden {
		t.Fatalf("anonymous stream: %v %v", resp.StatusCode, err)
	} else {
		resp.Body.Close()
	}
	browser := signIn(t, ts, "carol")
	open := func(lastID string) (*http.Response, *bufio.Scanner) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, ts.URL+"/events/chat/sse/", nil)
		if lastID != "" {
			req.Header.Set("Last-Event-ID", lastID)
		}
		resp, err := browser.Do(req)
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("stream: %v %v", resp, err)
		}
		t.Cleanup(func() { resp.Body.Close() })
		return resp, bufio.NewScanner(resp.Body)
	}
	next := func(sc *bufio.Scanner) (id, data string) {
		for sc.Scan() {
			line := sc.Text()
			switch {
			case strings.HasPrefix(line, "id: "):
				id = line[4:]
			case strings.HasPrefix(line, "data: "):
				data = line[6:]
			case line == "" && data != "":
				return id, data
			}
		}
		t.Fatalf("stream ended: %v", sc.Err())
		return "", ""
	}
	resp, sc := open("")
	alice := ts.Communicator("/ws/chat/sse/", wstest.Jar(signIn(t, ts, "alice").Jar))
	alice.MustConnect(ctx)
	if err := alice.SendJSON(ctx, map[string]string{"message": "one"}); err != nil {
		t.Fatal(err)
	}
	id, data := next(sc)
	var f chatOut
	if err := json.Unmarshal([]byte(data), &f); err != nil || f.Message != "one" || f.User != "alice" || f.ID != id || id == "" {
		t.Fatalf("event id %q data %s", id, data)
	}
	resp.Body.Close()
	if err := alice.SendJSON(ctx, map[string]string{"message": "two"}); err != nil {
		t.Fatal(err)
	}
	_, sc = open(id)
	if _, data := next(sc); !strings.Contains(data, `"message":"two"`) {
		t.Fatalf("resumed stream: %s, want message two", data)
	}
	_, sc = open("3-nosuchepoch")
	if _, data := next(sc); data != `{"event":"history-gap"}` {
		t.Fatalf("stream from an unknown position: %s, want history-gap first", data)
	}
}
