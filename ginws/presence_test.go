package ginws_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gin-gonic/gin"

	"ginws.dev/ginws"
	"ginws.dev/ginws/layer"
	"ginws.dev/ginws/wstest"
)

// roomPresence is tracked in "room_<room>" as the user named by ?user=, and relays who is here.
type roomPresence struct{ ginws.WebsocketConsumer }

func (r *roomPresence) user() string { return r.Scope().Query().Get("user") }

func (r *roomPresence) Presence() ([]string, layer.PresenceInfo) {
	return []string{"room_" + r.Scope().Param("room")}, layer.PresenceInfo{User: r.user(), Info: map[string]any{"tab": r.Scope().Query().Get("tab")}}
}

func (r *roomPresence) Events() ginws.Events {
	relay := func(key string) ginws.EventHandler {
		return func(ctx context.Context, ev layer.Message) error {
			if u, _ := ev.Str("user"); u == r.user() {
				return nil // our own arrival: the state says it
			}
			return r.SendJSON(map[string]any{key: ev["user"]})
		}
	}
	return ginws.Events{
		"presence.state": func(ctx context.Context, ev layer.Message) error {
			var users []string
			for _, e := range ev["members"].([]layer.PresenceEntry) {
				users = append(users, e.User)
			}
			return r.SendJSON(map[string]any{"members": strings.Join(users, ",")})
		},
		"presence.join":  relay("join"),
		"presence.leave": relay("leave"),
	}
}

func TestPresenceMember(t *testing.T) {
	t.Parallel()
	a := newApp(t, ginws.Config{}, func() ginws.Consumer { return new(roomPresence) }, func(r *gin.Engine, s *ginws.Server) {
		r.GET("/members/:room", func(c *gin.Context) {
			list, err := s.Layer().(layer.Presence).PresenceList(c, "room_"+c.Param("room"))
			if err != nil {
				c.AbortWithStatus(http.StatusServiceUnavailable)
				return
			}
			c.JSON(http.StatusOK, gin.H{"members": list})
		})
	})
	ctx := testCtx(t)
	dial := func(user, tab string) *wstest.Communicator {
		c := a.ts.Communicator("/ws/lobby?user=" + user + "&tab=" + tab)
		c.MustConnect(ctx)
		return c
	}
	want := func(c *wstest.Communicator, s string) {
		t.Helper()
		if got := recvText(t, c); got != s {
			t.Fatalf("got %s, want %s", got, s)
		}
	}
	alice := dial("alice", "1")
	want(alice, `{"members":"alice"}`)
	bob := dial("bob", "1")
	want(bob, `{"members":"alice,bob"}`)
	want(alice, `{"join":"bob"}`)
	bob2 := dial("bob", "2") // a second tab: nobody is told
	want(bob2, `{"members":"alice,bob"}`)

	resp, err := a.ts.Browser().Get(a.ts.URL + "/members/lobby")
	if err != nil {
		t.Fatal(err)
	}
	var body struct{ Members []layer.PresenceEntry }
	err = json.NewDecoder(resp.Body).Decode(&body)
	resp.Body.Close()
	if err != nil || len(body.Members) != 2 || body.Members[0].User != "alice" || body.Members[0].Connections != 1 ||
		body.Members[1].User != "bob" || body.Members[1].Connections != 2 || body.Members[0].Info["tab"] != "1" {
		t.Fatalf("GET /members/lobby: %+v, %v", body, err)
	}

	if err := bob.Disconnect(ctx); err != nil {
		t.Fatal(err)
	}
	if err := alice.ReceiveNothing(ctx, 200*time.Millisecond); err != nil {
		t.Fatalf("one of bob's two tabs left: %v", err)
	}
	if err := bob2.Disconnect(ctx); err != nil {
		t.Fatal(err)
	}
	want(alice, `{"leave":"bob"}`)
	if err := alice.ReceiveNothing(ctx, 200*time.Millisecond); err != nil {
		t.Fatal(err)
	}
}

// A layer without presence (this wrapper hides Memory's): a consumer that declares Presence is
// refused before Connect, with 500 and a log line that says why.
func TestPresenceMemberNeedsPresenceLayer(t *testing.T) {
	t.Parallel()
	lay := struct{ layer.Layer }{layer.NewMemory(layer.MemoryConfig{})}
	a := newApp(t, ginws.Config{Layer: lay}, func() ginws.Consumer { return new(roomPresence) })
	res, _ := a.ts.Communicator("/ws/lobby?user=alice").Connect(testCtx(t))
	if res.Status != http.StatusInternalServerError {
		t.Fatalf("handshake: status %d; want 500", res.Status)
	}
	a.logs.waitFor(t, "does not implement layer.Presence")
}
