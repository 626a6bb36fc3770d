package ginws_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/gorilla/websocket"

	"ginws.dev/ginws"
	"ginws.dev/ginws/layer"
	"ginws.dev/ginws/wstest"
)

// echo sends every frame back and records its Disconnect code.
type echo struct {
	ginws.WebsocketConsumer
	codes codes
}

func (e *echo) Receive(ctx context.Context, f ginws.ClientMessage) error {
	if f.Binary {
		return e.SendBinary(f.Data)
	}
	return e.SendText(f.Text())
}

func (e *echo) Disconnect(ctx context.Context, code int) {
	if e.codes != nil {
		e.codes <- code
	}
}

func TestEchoTextAndBinary(t *testing.T) {
	t.Parallel()
	a := newApp(t, ginws.Config{}, func() ginws.Consumer { return &echo{} })
	comm := a.ts.Communicator("/ws/lobby")
	ctx := testCtx(t)
	comm.MustConnect(ctx)
	if err := comm.SendText(ctx, "héllo"); err != nil {
		t.Fatal(err)
	}
	if got := recvText(t, comm); got != "héllo" {
		t.Fatalf("echo = %q", got)
	}
	if err := comm.SendBytes(ctx, []byte{0, 1, 2, 0xff}); err != nil {
		t.Fatal(err)
	}
	b, err := comm.ReceiveBytes(ctx)
	if err != nil || string(b) != "\x00\x01\x02\xff" {
		t.Fatalf("binary echo = %v, %v", b, err)
	}
	big := strings.Repeat("x", 70000) // over 64 KiB frames use the 8-byte length
	a2 := newApp(t, ginws.Config{ReadLimit: 1 << 20}, func() ginws.Consumer { return &echo{} })
	comm2 := a2.ts.Communicator("/ws/lobby")
	comm2.MustConnect(ctx)
	if err := comm2.SendText(ctx, big); err != nil {
		t.Fatal(err)
	}
	if got := recvText(t, comm2); got != big {
		t.Fatalf("large echo: %d bytes back", len(got))
	}
	if err := comm.Disconnect(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestNotAWebSocketRequest(t *testing.T) {
	t.Parallel()
	a := newApp(t, ginws.Config{}, func() ginws.Consumer { return &echo{} })
	resp, err := http.Get(a.ts.URL + "/ws/lobby")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUpgradeRequired || resp.Header.Get("Upgrade") != "websocket" {
		t.Fatalf("plain GET: %d %v, want 426 with Upgrade: websocket", resp.StatusCode, resp.Header)
	}
}

func TestRefusals(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		connect func(ctx context.Context, c *funcConsumer) error
		status  int
		log     string
	}{
		{"Connect returns without accepting → 403", func(ctx context.Context, c *funcConsumer) error {
			return nil
		}, http.StatusForbidden, "Connect did not accept"},
		{"Connect closes before accepting → 403", func(ctx context.Context, c *funcConsumer) error {
			return c.Close(4000, "no")
		}, http.StatusForbidden, "Connect did not accept"},
		{"Connect returns Refuse(401) → 401", func(ctx context.Context, c *funcConsumer) error {
			return ginws.Refuse(http.StatusUnauthorized, "no token")
		}, http.StatusUnauthorized, "no token"},
		{"Connect fails → 500", func(ctx context.Context, c *funcConsumer) error {
			return errors.New("database down")
		}, http.StatusInternalServerError, "database down"},
		{"Connect panics → 500", func(ctx context.Context, c *funcConsumer) error {
			panic("boom in connect")
		}, http.StatusInternalServerError, "boom in connect"},
		{"SendText before Accept → ErrNotAccepted, then 403", func(ctx context.Context, c *funcConsumer) error {
			if err := c.SendText("early"); !errors.Is(err, ginws.ErrNotAccepted) {
				return fmt.Errorf("send before accept: %v, want ErrNotAccepted", err)
			}
			return nil
		}, http.StatusForbidden, "Connect did not accept"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			a := newApp(t, ginws.Config{}, consumer(funcConsumer{connect: tc.connect}), func(r *gin.Engine, s *ginws.Server) {
				r.GET("/echo", s.Mount(func() ginws.Consumer { return &echo{} }))
			})
			res, err := a.ts.Communicator("/ws/lobby").Connect(testCtx(t))
			if err != nil {
				t.Fatal(err)
			}
			if res.Accepted || res.Status != tc.status {
				t.Fatalf("connect: accepted=%v status=%d, want refused with %d", res.Accepted, res.Status, tc.status)
			}
			a.logs.waitFor(t, tc.log)
			if got := a.srv.Stats(); got.Refused != 1 || got.Accepted != 0 || got.Open != 0 {
				t.Fatalf("stats after refusal: %+v", got)
			}
			// The server lives on and accepts others.
			a.ts.Communicator("/echo").MustConnect(testCtx(t))
		})
	}
}

func TestRefusedHandshakeLeavesNoTrace(t *testing.T) {
	t.Parallel()
	lay := layer.NewMemory(layer.MemoryConfig{})
	a := newApp(t, ginws.Config{Layer: lay}, consumer(funcConsumer{
		groups:  func(c *funcConsumer) []string { return []string{"room_" + c.Scope().Param("room"), "everyone"} },
		connect: func(ctx context.Context, c *funcConsumer) error { return nil }, // refuse
	}))
	res, err := a.ts.Communicator("/ws/lobby").Connect(testCtx(t))
	if err != nil || res.Status != http.StatusForbidden {
		t.Fatalf("connect: %+v %v", res, err)
	}
	if st := lay.Stats(); st.Groups != 0 || st.Channels != 0 {
		t.Fatalf("a refused handshake left groups or channels behind: %+v", st)
	}
}

func TestAcceptSubprotocolHeadersAndSendInConnect(t *testing.T) {
	t.Parallel()
	a := newApp(t, ginws.Config{}, consumer(funcConsumer{connect: func(ctx context.Context, c *funcConsumer) error {
		if err := c.Accept(ginws.WithSubprotocol("not-offered")); err == nil {
			return errors.New("accepting a subprotocol the client did not offer must fail")
		}
		if err := c.Accept(ginws.WithSubprotocol("chat.v2"), ginws.WithHeader("X-Room", c.Scope().Param("room"))); err != nil {
			return err
		}
		if err := c.Accept(); !errors.Is(err, ginws.ErrAlreadyAccepted) {
			return errors.New("second Accept did not fail")
		}
		return c.SendText("hello from connect")
	}}))
	comm := a.ts.Communicator("/ws/lobby", wstest.Subprotocols("chat.v1", "chat.v2"))
	res := comm.MustConnect(testCtx(t))
	if res.Subprotocol != "chat.v2" || res.Header.Get("X-Room") != "lobby" {
		t.Fatalf("subprotocol %q, X-Room %q", res.Subprotocol, res.Header.Get("X-Room"))
	}
	if got := recvText(t, comm); got != "hello from connect" {
		t.Fatalf("got %q", got)
	}
}

func TestOriginDefaultIsSameOrigin(t *testing.T) {
	t.Parallel()
	a := newApp(t, ginws.Config{}, func() ginws.Consumer { return &echo{} })
	ctx := testCtx(t)
	for _, tc := range []struct {
		origin string
		ok     bool
	}{
		{a.ts.URL, true},                   // the app's own page
		{"", true},                         // no Origin: not a browser
		{"http://evil.example", false},     // cross-site WebSocket hijacking
		{"http://" + "127.0.0.1:1", false}, // same host, other port
		{strings.ToUpper(a.ts.URL[:4]) + a.ts.URL[4:], true},
	} {
		res, err := a.ts.Communicator("/ws/lobby", wstest.Origin(tc.origin)).Connect(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if res.Accepted != tc.ok {
			t.Errorf("origin %q: accepted=%v status=%d, want accepted=%v", tc.origin, res.Accepted, res.Status, tc.ok)
		}
		if !tc.ok && res.Status != http.StatusForbidden {
			t.Errorf("origin %q refused with %d, want 403", tc.origin, res.Status)
		}
	}
	custom := newApp(t, ginws.Config{CheckOrigin: func(r *http.Request) bool {
		return r.Header.Get("Origin") == "https://app.example"
	}}, func() ginws.Consumer { return &echo{} })
	if res, _ := custom.ts.Communicator("/ws/x", wstest.Origin("https://app.example")).Connect(ctx); !res.Accepted {
		t.Error("CheckOrigin allowed the origin but the handshake was refused")
	}
	if res, _ := custom.ts.Communicator("/ws/x").Connect(ctx); res.Accepted {
		t.Error("CheckOrigin refused the origin but the handshake was accepted")
	}
	marked := newApp(t, ginws.Config{}, func() ginws.Consumer { return &echo{} }, func(r *gin.Engine, s *ginws.Server) {
		r.GET("/marked/:room", func(c *gin.Context) { ginws.MarkOriginChecked(c) }, s.Mount(func() ginws.Consumer { return &echo{} }))
	})
	if res, _ := marked.ts.Communicator("/marked/x", wstest.Origin("https://elsewhere.example")).Connect(ctx); !res.Accepted {
		t.Error("an origin validated by middleware was refused by the default check")
	}
}

// chatRoom is the consumer of Channels' chat tutorial: it joins room_ROOM and "everyone", announces
// itself to its room before accepting, says every text frame to its room, and sends the room's
// chat.message events to its client as "chat:TEXT".
func chatRoom(cs codes) func() ginws.Consumer {
	room := func(c *funcConsumer) string { return "room_" + c.Scope().Param("room") }
	return consumer(funcConsumer{
		groups: func(c *funcConsumer) []string { return []string{room(c), "everyone"} },
		events: func(c *funcConsumer) ginws.Events {
			return ginws.Events{"chat.message": func(ctx context.Context, ev layer.Message) error {
				s, _ := ev.Str("text")
				return c.SendText("chat:" + s)
			}}
		},
		connect: func(ctx context.Context, c *funcConsumer) error {
			// Declared groups are joined before Connect: a group send now reaches this consumer
			// once it is accepted.
			if err := c.GroupSend(ctx, room(c), layer.Message{"type": "chat.message", "text": "joined"}); err != nil {
				return err
			}
			return c.Accept()
		},
		receive: func(ctx context.Context, c *funcConsumer, f ginws.ClientMessage) error {
			return c.GroupSend(ctx, room(c), layer.Message{"type": "chat.message", "text": f.Text()})
		},
		disconnect: func(ctx context.Context, c *funcConsumer, code int) {
			if cs != nil {
				cs <- code
			}
		},
	})
}

func TestGroupsAndTypedEvents(t *testing.T) {
	t.Parallel()
	lay := layer.NewMemory(layer.MemoryConfig{})
	cs := make(codes, 4)
	a := newApp(t, ginws.Config{Layer: lay}, chatRoom(cs))
	ctx := testCtx(t)
	alice := a.ts.Communicator("/ws/lobby")
	alice.MustConnect(ctx)
	if got := recvText(t, alice); got != "chat:joined" {
		t.Fatalf("alice's own join announcement: %q", got)
	}
	bob := a.ts.Communicator("/ws/lobby")
	bob.MustConnect(ctx)
	if got := recvText(t, bob); got != "chat:joined" {
		t.Fatalf("bob: %q", got)
	}
	if got := recvText(t, alice); got != "chat:joined" {
		t.Fatalf("alice sees bob join: %q", got)
	}
	other := a.ts.Communicator("/ws/other")
	other.MustConnect(ctx)
	recvText(t, other)

	if err := alice.SendText(ctx, "hi"); err != nil {
		t.Fatal(err)
	}
	for _, c := range []*wstest.Communicator{alice, bob} {
		if got := recvText(t, c); got != "chat:hi" {
			t.Fatalf("group message: %q", got)
		}
	}
	if err := other.ReceiveNothing(ctx, 100*time.Millisecond); err != nil {
		t.Fatalf("another room got the message: %v", err)
	}
	// chat_message names the same handler as chat.message, as in Channels.
	if err := lay.GroupSend(ctx, "room_lobby", layer.Message{"type": "chat_message", "text": "underscored"}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []*wstest.Communicator{alice, bob} {
		if got := recvText(t, c); got != "chat:underscored" {
			t.Fatalf("chat_message event: %q", got)
		}
	}
	// Leaving: the groups are discarded when the connection ends.
	if err := bob.Disconnect(ctx); err != nil {
		t.Fatal(err)
	}
	if code := cs.wait(t); code != websocket.CloseNormalClosure {
		t.Fatalf("Disconnect code %d, want 1000", code)
	}
	if err := alice.SendText(ctx, "after"); err != nil {
		t.Fatal(err)
	}
	if got := recvText(t, alice); got != "chat:after" {
		t.Fatalf("got %q", got)
	}
	for _, c := range []*wstest.Communicator{alice, other} {
		if err := c.Disconnect(ctx); err != nil {
			t.Fatal(err)
		}
		cs.wait(t)
	}
	if st := lay.Stats(); st.Groups != 0 || st.Channels != 0 {
		t.Fatalf("after everyone left: %+v, want no groups or channels", st)
	}
}

// A handler that fails ends its connection alone: the client gets the close code, Disconnect runs
// with it, the groups are left, and the server accepts the next connection.
func TestHandlerFailureClosesTheConnectionOnly(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		receive func(ctx context.Context, c *funcConsumer, f ginws.ClientMessage) error
		code    int
		reason  string
		log     string // "": nothing at level ERROR
		errors  uint64 // Stats.HandlerErrors
	}{
		{"Receive panics → 1011", func(context.Context, *funcConsumer, ginws.ClientMessage) error {
			panic("handler bug")
		}, websocket.CloseInternalServerErr, "", "handler bug", 1},
		{"Receive fails → 1011", func(context.Context, *funcConsumer, ginws.ClientMessage) error {
			return errors.New("handler failed")
		}, websocket.CloseInternalServerErr, "", "handler failed", 1},
		{"Receive returns a CloseError → its code, no error logged", func(context.Context, *funcConsumer, ginws.ClientMessage) error {
			return ginws.NewCloseError(4001, "bye now")
		}, 4001, "bye now", "", 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			lay := layer.NewMemory(layer.MemoryConfig{})
			cs := make(codes, 2)
			a := newApp(t, ginws.Config{Layer: lay}, consumer(funcConsumer{
				groups:     func(*funcConsumer) []string { return []string{"room"} },
				receive:    tc.receive,
				disconnect: cs.record,
			}))
			ctx := testCtx(t)
			comm := a.ts.Communicator("/ws/lobby")
			comm.MustConnect(ctx)
			if err := comm.SendText(ctx, "go"); err != nil {
				t.Fatal(err)
			}
			code, reason, err := comm.WaitClosed(ctx)
			if err != nil || code != tc.code || (tc.reason != "" && reason != tc.reason) {
				t.Fatalf("close: %d %q %v, want %d %q", code, reason, err, tc.code, tc.reason)
			}
			if code := cs.wait(t); code != tc.code {
				t.Fatalf("Disconnect ran with %d, want %d", code, tc.code)
			}
			if st := lay.Stats(); st.Groups != 0 {
				t.Fatalf("a failed consumer left its groups: %+v", st)
			}
			if got := a.srv.Stats().HandlerErrors; got != tc.errors {
				t.Fatalf("HandlerErrors = %d, want %d", got, tc.errors)
			}
			if tc.log != "" {
				a.logs.waitFor(t, tc.log)
			} else if strings.Contains(a.logs.String(), "level=ERROR") {
				t.Fatalf("a deliberate close must not log an error:\n%s", a.logs)
			}
			a.ts.Communicator("/ws/lobby").MustConnect(ctx) // the process lives
		})
	}
}

// An event the consumer cannot handle closes its connection with 1011 and says why in the log.
func TestBadEventsClose1011(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name  string
		event layer.Message
		log   string
	}{
		{"no type", layer.Message{"text": "x"}, `has no \"type\"`},
		{"no handler", layer.Message{"type": "no.such.handler"}, "no handler for event type"},
		{"type starts with _", layer.Message{"type": "_private"}, "must not start with"},
		{"type starts with .", layer.Message{"type": ".hidden"}, "must not start with"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			lay := layer.NewMemory(layer.MemoryConfig{})
			cs := make(codes, 1)
			names := make(chan string, 1)
			a := newApp(t, ginws.Config{Layer: lay}, consumer(funcConsumer{
				groups: func(*funcConsumer) []string { return []string{"room"} },
				events: func(*funcConsumer) ginws.Events {
					return ginws.Events{"chat.message": func(context.Context, layer.Message) error { return nil }}
				},
				connect: func(ctx context.Context, c *funcConsumer) error {
					names <- c.ChannelName()
					return c.Accept()
				},
				disconnect: cs.record,
			}))
			ctx := testCtx(t)
			comm := a.ts.Communicator("/ws/lobby")
			comm.MustConnect(ctx)
			if err := lay.Send(ctx, <-names, tc.event); err != nil {
				t.Fatal(err)
			}
			if code := waitClosed(t, comm); code != websocket.CloseInternalServerErr {
				t.Fatalf("close code %d, want 1011", code)
			}
			if code := cs.wait(t); code != websocket.CloseInternalServerErr {
				t.Fatalf("Disconnect code %d, want 1011", code)
			}
			a.logs.waitFor(t, tc.log)
			if st := lay.Stats(); st.Groups != 0 {
				t.Fatalf("groups left behind: %+v", st)
			}
		})
	}
}

func TestPointToPointFromHTTPHandler(t *testing.T) {
	t.Parallel()
	tellName := func(ctx context.Context, c *funcConsumer) error {
		if err := c.Accept(); err != nil {
			return err
		}
		return c.SendText(c.ChannelName())
	}
	pong := func(c *funcConsumer) ginws.Events {
		return ginws.Events{"ping_me": func(ctx context.Context, ev layer.Message) error { return c.SendText("pong:" + c.ChannelName()) }}
	}
	a := newApp(t, ginws.Config{}, consumer(funcConsumer{connect: tellName, events: pong}), func(r *gin.Engine, s *ginws.Server) {
		r.POST("/poke/:channel", func(c *gin.Context) {
			err := s.Layer().Send(c, c.Param("channel"), layer.Message{"type": "ping.me"})
			if err != nil {
				c.String(http.StatusBadRequest, err.Error())
				return
			}
			c.Status(http.StatusNoContent)
		})
	})
	ctx := testCtx(t)
	comm := a.ts.Communicator("/ws/lobby")
	comm.MustConnect(ctx)
	name := recvText(t, comm)
	if !layer.IsProcessLocal(name) {
		t.Fatalf("channel name %q is not process-local", name)
	}
	resp, err := http.Post(a.ts.URL+"/poke/"+name, "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("poke: %d", resp.StatusCode)
	}
	if got := recvText(t, comm); got != "pong:"+name {
		t.Fatalf("point-to-point: %q", got)
	}
	// A bad channel name is a clear 400, not a crash.
	resp, err = http.Post(a.ts.URL+"/poke/bad%20name", "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("bad name: %d", resp.StatusCode)
	}
}

func TestHandlersNeverRunConcurrently(t *testing.T) {
	t.Parallel()
	// Every handler checks that no other handler of the connection is inside, and counts itself in
	// a plain int, so the race detector sees any overlap too. The frame "count" asks for the count.
	var inside, overlap atomic.Int32
	count := 0
	enter := func() func() {
		if inside.Add(1) != 1 {
			overlap.Add(1)
		}
		count++
		time.Sleep(50 * time.Microsecond)
		return func() { inside.Add(-1) }
	}
	lay := layer.NewMemory(layer.MemoryConfig{Capacity: 10000})
	a := newApp(t, ginws.Config{Layer: lay}, consumer(funcConsumer{
		groups: func(*funcConsumer) []string { return []string{"serial"} },
		events: func(*funcConsumer) ginws.Events {
			return ginws.Events{"tick": func(ctx context.Context, ev layer.Message) error {
				defer enter()()
				return nil
			}}
		},
		receive: func(ctx context.Context, c *funcConsumer, f ginws.ClientMessage) error {
			defer enter()()
			if f.Text() == "count" {
				return c.SendJSON(map[string]int{"count": count})
			}
			return nil
		},
	}))
	ctx := testCtx(t)
	comm := a.ts.Communicator("/ws/x")
	comm.MustConnect(ctx)
	const frames, events = 300, 300
	done := make(chan error, 1)
	go func() {
		for i := 0; i < events; i++ {
			if err := lay.GroupSend(ctx, "serial", layer.Message{"type": "tick"}); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	for i := 0; i < frames; i++ {
		if err := comm.SendText(ctx, "frame"); err != nil {
			t.Fatal(err)
		}
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	// Wait until every event has been handled, then ask for the count.
	deadline := time.Now().Add(5 * time.Second)
	for {
		if err := comm.SendText(ctx, "count"); err != nil {
			t.Fatal(err)
		}
		var got struct{ Count int }
		if err := comm.ReceiveJSON(ctx, &got); err != nil {
			t.Fatal(err)
		}
		if got.Count >= frames+events {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("handled %d of %d", got.Count, frames+events)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if n := overlap.Load(); n != 0 {
		t.Fatalf("handlers overlapped %d times", n)
	}
	if d := a.srv.Stats().DroppedEvents; d != 0 {
		t.Fatalf("dropped %d events", d)
	}
}
