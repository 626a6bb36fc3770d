package main

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"ginws.dev/ginws/layer"
	"ginws.dev/ginws/redislayer"
	"ginws.dev/ginws/redislayer/djangotest"
	"ginws.dev/ginws/wstest"
)

// djangoRedisURL is the Redis database shared with the Django side (DB 4 belongs to the Django
// interop tests).
// djangoRedisURL is this test's own Redis database: it is flushed, and other packages' Django
// interop tests (DB 4, DB 8) run at the same time.
const djangoRedisURL = "redis://127.0.0.1:6379/9"

// TestChatWithDjango: this Go chat and the Django Channels tutorial chat, run by Daphne, use one
// Redis with channels_redis's key layout and prefix ("asgi"), so they are ONE chat — a room's
// members on either server see what members on the other type. This is the migration path: move a
// Channels app to Gin one route at a time.
//
// Needs Redis on 127.0.0.1:6379 and `apt-get install python3-django-channels python3-channels-redis
// python3-daphne`.
func TestChatWithDjango(t *testing.T) {
	t.Parallel()
	djangotest.FlushDB(t, djangoRedisURL)
	// The rooms keep history, as the chat command's do: Django's sends are delivered live without
	// an id, Go's with one, and Django's consumers take Go's messages with the extra position key.
	lay, err := redislayer.New(redislayer.Config{Hosts: []string{djangoRedisURL}, Prefix: "asgi", History: []layer.HistoryRule{History}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lay.Close() })
	app := NewApp(Options{SessionKey: []byte("0123456789abcdef0123456789abcdef"), Layer: lay,
		Logger: slog.New(slog.DiscardHandler)})
	ts := wstest.NewServer(t, app.Handler())
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = app.WS.Shutdown(ctx)
	})
	daphne := djangotest.Start(t, djangotest.Options{RedisHosts: []string{djangoRedisURL}, Prefix: "asgi"})
	ctx := ctxT(t)

	alice := ts.Communicator("/ws/chat/lobby/", wstest.Jar(signIn(t, ts, "alice").Jar)) // on Go
	bob := wstest.New(t, daphne.WSURL("/ws/chat/lobby/"))                               // on Django
	carol := wstest.New(t, daphne.WSURL("/ws/chat/other/"))                             // on Django, another room
	dave := ts.Communicator("/ws/chat/other/", wstest.Jar(signIn(t, ts, "dave").Jar))   // on Go, another room
	for _, c := range []*wstest.Communicator{alice, bob, carol, dave} {
		c.MustConnect(ctx)
	}

	// Django → Go: what bob types on the Django page reaches alice on the Go page.
	if err := bob.SendJSON(ctx, map[string]string{"message": "hello from Django ✓"}); err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]*wstest.Communicator{"alice (Go)": alice, "bob (Django)": bob} {
		var got chatOut
		if err := receiveChat(ctx, c, &got); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if got.Message != "hello from Django ✓" || got.ID != "" {
			t.Fatalf("%s got %+v, want the message without an id (Django assigns no position)", name, got)
		}
	}

	// Go → Django: what alice types reaches bob, with the message field the tutorial's page reads.
	if err := alice.SendJSON(ctx, map[string]string{"message": "hello from Go <b>✓</b>"}); err != nil {
		t.Fatal(err)
	}
	var got chatOut
	if err := bob.ReceiveJSON(ctx, &got); err != nil {
		t.Fatalf("bob (Django): %v", err)
	}
	if got.Message != "hello from Go <b>✓</b>" {
		t.Fatalf("bob (Django) got %+v", got)
	}
	var mine chatOut
	if err := receiveChat(ctx, alice, &mine); err != nil || mine.Message != "hello from Go <b>✓</b>" || mine.User != "alice" || mine.ID == "" {
		t.Fatalf("alice (Go) got her own message as %+v (%v), want it with an id", mine, err)
	}

	// Rooms stay apart across the two servers.
	var members chatOut
	if err := dave.ReceiveJSON(ctx, &members); err != nil || members.Event != "members" {
		t.Fatalf("dave (Go): %+v, %v; want the members of his room first", members, err)
	}
	for name, c := range map[string]*wstest.Communicator{"carol (Django, other room)": carol, "dave (Go, other room)": dave} {
		if err := c.ReceiveNothing(ctx, 300*time.Millisecond); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}
