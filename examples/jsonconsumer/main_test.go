package main

import (
	"context"
	"log/slog"
	"net/http"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"go.uber.org/goleak"

	"ginws.dev/ginws/wstest"
)

func TestMain(m *testing.M) {
	gin.SetMode(gin.TestMode)
	goleak.VerifyTestMain(m)
}

func TestJSONConsumerGroupResponse(t *testing.T) {
	r, ws := NewApp(slog.New(slog.DiscardHandler))
	ts := wstest.NewServer(t, r)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	defer ws.Shutdown(ctx)

	a := ts.Communicator("/ws/my_group/")
	b := ts.Communicator("/ws/my_group")
	other := ts.Communicator("/ws/other_group/")
	for _, c := range []*wstest.Communicator{a, b, other} {
		c.MustConnect(ctx)
	}
	if err := a.SendJSON(ctx, map[string]string{"type": "message", "content": "Hello, server!"}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []*wstest.Communicator{a, b} {
		var got map[string]string
		if err := c.ReceiveJSON(ctx, &got); err != nil {
			t.Fatal(err)
		}
		if got["type"] != "response" || got["content"] != "Message received: Hello, server!" {
			t.Fatalf("got %v", got)
		}
	}
	if err := other.ReceiveNothing(ctx, 100*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if err := a.SendJSON(ctx, map[string]string{"type": "dance"}); err != nil {
		t.Fatal(err)
	}
	var got map[string]string
	if err := a.ReceiveJSON(ctx, &got); err != nil || got["type"] != "error" {
		t.Fatalf("unknown type: %v %v", got, err)
	}
	// A malformed frame closes with 1007, the others stay.
	if err := b.SendText(ctx, "{not json"); err != nil {
		t.Fatal(err)
	}
	if code, _, err := b.WaitClosed(ctx); err != nil || code != 1007 {
		t.Fatalf("malformed JSON: close %d %v", code, err)
	}
	res, err := ts.Communicator("/ws/bad%20group/").Connect(ctx)
	if err != nil || res.Status != http.StatusNotFound {
		t.Fatalf("bad group name: %+v %v", res, err)
	}
}
