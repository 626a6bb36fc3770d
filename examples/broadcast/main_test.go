package main

import (
	"context"
	"log/slog"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"go.uber.org/goleak"

	"ginws.dev/ginws/layer"
	"ginws.dev/ginws/wstest"
)

func TestMain(m *testing.M) {
	gin.SetMode(gin.TestMode)
	goleak.VerifyTestMain(m)
}

type msg struct {
	Type    string `json:"type"`
	From    string `json:"from"`
	To      string `json:"to"`
	Message string `json:"message"`
	Channel string `json:"channel"`
	Error   string `json:"error"`
}

func TestBroadcastAndPointToPoint(t *testing.T) {
	r, ws := NewApp(slog.New(slog.DiscardHandler), nil)
	ts := wstest.NewServer(t, r)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	defer ws.Shutdown(ctx)

	recv := func(c *wstest.Communicator) msg {
		t.Helper()
		var m msg
		if err := c.ReceiveJSON(ctx, &m); err != nil {
			t.Fatal(err)
		}
		return m
	}
	connect := func(user string) (*wstest.Communicator, string) {
		c := ts.Communicator("/ws/notify?user=" + user)
		c.MustConnect(ctx)
		w := recv(c)
		if w.Type != "welcome" || w.Channel == "" {
			t.Fatalf("welcome: %+v", w)
		}
		return c, w.Channel
	}
	ada1, ada1ch := connect("ada")
	ada2, _ := connect("ada") // a second tab
	bob, bobch := connect("bob")
	post := func(path, message string) int {
		resp, err := http.PostForm(ts.URL+path, url.Values{"message": {message}})
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}

	// Broadcast from HTTP: everyone.
	if code := post("/broadcast", "hello all"); code != http.StatusAccepted {
		t.Fatalf("broadcast: %d", code)
	}
	for _, c := range []*wstest.Communicator{ada1, ada2, bob} {
		if m := recv(c); m.Message != "hello all" || m.From != "server" {
			t.Fatalf("broadcast got %+v", m)
		}
	}
	// To one user from HTTP: both of ada's tabs, not bob.
	if code := post("/notify/ada", "for ada"); code != http.StatusAccepted {
		t.Fatalf("notify: %d", code)
	}
	for _, c := range []*wstest.Communicator{ada1, ada2} {
		if m := recv(c); m.Message != "for ada" {
			t.Fatalf("notify got %+v", m)
		}
	}
	if err := bob.ReceiveNothing(ctx, 100*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	// To one connection by channel name from HTTP: only ada's first tab.
	if code := post("/send/"+ada1ch, "just this tab"); code != http.StatusAccepted {
		t.Fatalf("send: %d", code)
	}
	if m := recv(ada1); m.Message != "just this tab" {
		t.Fatalf("send got %+v", m)
	}
	if err := ada2.ReceiveNothing(ctx, 100*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	// From a client to another connection.
	if err := ada2.SendJSON(ctx, outgoing{To: "channel:" + bobch, Message: "psst"}); err != nil {
		t.Fatal(err)
	}
	if m := recv(bob); m.Message != "psst" || m.From != "ada" {
		t.Fatalf("p2p from client: %+v", m)
	}
	if err := bob.SendJSON(ctx, outgoing{To: "user:ada", Message: "hi ada"}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []*wstest.Communicator{ada1, ada2} {
		if m := recv(c); m.Message != "hi ada" || m.From != "bob" {
			t.Fatalf("user message from client: %+v", m)
		}
	}
	// Errors are answered, not fatal.
	if err := bob.SendJSON(ctx, outgoing{To: "mars", Message: "x"}); err != nil {
		t.Fatal(err)
	}
	if m := recv(bob); m.Type != "error" {
		t.Fatalf("bad target: %+v", m)
	}
	if code := post("/send/bad%20channel", "x"); code != http.StatusBadRequest {
		t.Fatalf("bad channel name: %d", code)
	}
	res, err := ts.Communicator("/ws/notify").Connect(ctx)
	if err != nil || res.Status != http.StatusForbidden {
		t.Fatalf("no user: %+v %v", res, err)
	}
}

// POST /thumbnails/:user hands the job to the worker's named channel, and the worker's
// thumbnail.done to the user's group reaches the user's sockets. (examples/worker runs the worker
// end to end over Redis.)
func TestThumbnailsView(t *testing.T) {
	r, ws := NewApp(slog.New(slog.DiscardHandler), nil)
	ts := wstest.NewServer(t, r)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	defer ws.Shutdown(ctx)
	ada := ts.Communicator("/ws/notify?user=ada")
	ada.MustConnect(ctx)
	var welcome msg
	if err := ada.ReceiveJSON(ctx, &welcome); err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]int{"/thumbnails/ada": http.StatusAccepted, "/thumbnails/a%20b": http.StatusBadRequest} {
		resp, err := http.PostForm(ts.URL+path, url.Values{"id": {"42"}})
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Fatalf("POST %s: %d, want %d", path, resp.StatusCode, want)
		}
	}
	job, err := ws.Layer().Receive(ctx, ThumbnailsChannel)
	if err != nil {
		t.Fatal(err)
	}
	if job.Type() != "generate" || job["id"] != int64(42) || job["notify"] != "user.ada" {
		t.Fatalf("the worker would get %v", job)
	}
	// What the worker does when done:
	if err := ws.Layer().GroupSend(ctx, job["notify"].(string), layer.Message{"type": "thumbnail.done", "id": job["id"]}); err != nil {
		t.Fatal(err)
	}
	var done struct {
		Type string `json:"type"`
		ID   int    `json:"id"`
	}
	if err := ada.ReceiveJSON(ctx, &done); err != nil || done.Type != "thumbnail.done" || done.ID != 42 {
		t.Fatalf("ada got %+v, %v", done, err)
	}
}
