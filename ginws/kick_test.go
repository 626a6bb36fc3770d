package ginws_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/gin-gonic/gin"

	"ginws.dev/ginws"
	"ginws.dev/ginws/layer"
	"ginws.dev/ginws/wstest"
)

// TestCloseGroupAcrossServers: two servers sharing one layer stand for two processes. A logout
// view on one closes the sockets of one session on both, with its code and reason; another
// session's sockets stay open and still get events.
func TestCloseGroupAcrossServers(t *testing.T) {
	t.Parallel()
	shared := layer.NewMemory(layer.MemoryConfig{})
	groups := func(s *ginws.Scope) []string { return []string{"session." + s.QueryValue("sid")} }
	ended := make(codes, 4)
	fc := funcConsumer{
		groups: func(*funcConsumer) []string { return []string{"room"} },
		events: func(c *funcConsumer) ginws.Events {
			return ginws.Events{"chat.message": func(ctx context.Context, ev layer.Message) error {
				s, _ := ev.Str("text")
				return c.SendText(s)
			}}
		},
		disconnect: ended.record,
	}
	logout := func(r *gin.Engine, srv *ginws.Server) {
		r.POST("/logout", func(c *gin.Context) {
			if err := srv.CloseGroup(c, "session."+c.Query("sid"), 4001, "signed out"); err != nil {
				c.String(http.StatusInternalServerError, err.Error())
				return
			}
			c.Status(http.StatusNoContent)
		})
	}
	a := newApp(t, ginws.Config{Layer: shared, Groups: groups}, consumer(fc), logout)
	b := newApp(t, ginws.Config{Layer: shared, Groups: groups}, consumer(fc))

	ctx := testCtx(t)
	gone1 := a.ts.Communicator("/ws/x?sid=s1")
	gone2 := b.ts.Communicator("/ws/x?sid=s1")
	stays := b.ts.Communicator("/ws/x?sid=s2")
	for _, c := range []*wstest.Communicator{gone1, gone2, stays} {
		c.MustConnect(ctx)
	}

	resp, err := http.Post(a.ts.URL+"/logout?sid=s1", "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("logout: %d", resp.StatusCode)
	}
	for _, c := range []*wstest.Communicator{gone1, gone2} {
		code, reason, err := c.WaitClosed(ctx)
		if err != nil || code != 4001 || reason != "signed out" {
			t.Fatalf("closed with %d %q (%v), want 4001 \"signed out\"", code, reason, err)
		}
	}
	for range 2 {
		if code := ended.wait(t); code != 4001 {
			t.Fatalf("Disconnect got %d, want 4001", code)
		}
	}
	if err := shared.GroupSend(ctx, "room", layer.Message{"type": "chat.message", "text": "still here"}); err != nil {
		t.Fatal(err)
	}
	if got := recvText(t, stays); got != "still here" {
		t.Fatalf("the other session got %q", got)
	}
	a.logs.waitFor(t, "closing on request")
	if !strings.Contains(a.logs.String(), "close_code=4001") {
		t.Fatalf("log line lacks the code:\n%s", a.logs.String())
	}
}

// TestCloseEventToOneChannel: the close event sent to a channel name closes that connection; a bad
// code in it still closes, with 1008.
func TestCloseEventToOneChannel(t *testing.T) {
	t.Parallel()
	names := make(chan string, 2)
	fc := funcConsumer{connect: func(ctx context.Context, c *funcConsumer) error {
		names <- c.ChannelName()
		return c.Accept()
	}}
	a := newApp(t, ginws.Config{}, consumer(fc))
	ctx := testCtx(t)
	for _, tc := range []struct {
		msg  layer.Message
		code int
	}{
		{layer.Message{"type": "ginws.close", "code": 4002, "reason": "kicked"}, 4002},
		{layer.Message{"type": "ginws.close", "code": 1005}, ginws.ClosePolicyViolation},
	} {
		c := a.ts.Communicator("/ws/x")
		c.MustConnect(ctx)
		if err := a.srv.Layer().Send(ctx, <-names, tc.msg); err != nil {
			t.Fatal(err)
		}
		code, _, err := c.WaitClosed(ctx)
		if err != nil || code != tc.code {
			t.Fatalf("closed with %d (%v), want %d", code, err, tc.code)
		}
	}
	if err := a.srv.CloseGroup(ctx, "any", 1006, ""); err == nil {
		t.Fatal("CloseGroup took 1006, a code no one may send")
	}
}

// TestReservedEventType: a consumer cannot register a handler for ginws' own events.
func TestReservedEventType(t *testing.T) {
	t.Parallel()
	fc := funcConsumer{events: func(*funcConsumer) ginws.Events {
		return ginws.Events{"ginws.close": func(context.Context, layer.Message) error { return nil }}
	}}
	a := newApp(t, ginws.Config{}, consumer(fc))
	res, err := a.ts.Communicator("/ws/x").Connect(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	if res.Accepted || res.Status != http.StatusInternalServerError {
		t.Fatalf("accepted=%v status=%d, want 500", res.Accepted, res.Status)
	}
}

// A connection whose event queue is full (its handler is busy, a flood queued behind it) is still
// signed out: the close event is queued over the cap and handled after what was queued before.
func TestCloseGroupReachesAFullQueue(t *testing.T) {
	t.Parallel()
	const capacity = 4
	lay := layer.NewMemory(layer.MemoryConfig{Capacity: capacity})
	busy, release := make(chan struct{}, 1), make(chan struct{})
	fc := funcConsumer{
		groups: func(*funcConsumer) []string { return []string{"room"} },
		events: func(c *funcConsumer) ginws.Events {
			return ginws.Events{"chat.message": func(ctx context.Context, ev layer.Message) error {
				select {
				case busy <- struct{}{}:
					<-release // the first event holds the pump while the queue fills
				default:
				}
				return nil
			}}
		},
	}
	a := newApp(t, ginws.Config{Layer: lay, Groups: func(*ginws.Scope) []string { return []string{"session.s1"} }}, consumer(fc))
	ctx := testCtx(t)
	c := a.ts.Communicator("/ws/x")
	c.MustConnect(ctx)
	msg := layer.Message{"type": "chat.message"}
	if err := lay.GroupSend(ctx, "room", msg); err != nil {
		t.Fatal(err)
	}
	<-busy
	for i := 0; i < capacity+3; i++ { // fills the queue; the rest are dropped
		_ = lay.GroupSend(ctx, "room", msg)
	}
	if st := a.srv.Stats(); st.DroppedEvents == 0 {
		t.Fatalf("the queue never filled: %+v", st)
	}
	if err := a.srv.CloseGroup(ctx, "session.s1", 4001, "signed out"); err != nil {
		t.Fatal(err)
	}
	close(release)
	code, reason, err := c.WaitClosed(ctx)
	if err != nil || code != 4001 || reason != "signed out" {
		t.Fatalf("closed with %d %q (%v), want 4001 \"signed out\"", code, reason, err)
	}
}
