package ginws_test

import (
	"context"
	"errors"
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

// refuser refuses in the way its mode says.
type refuser struct {
	ginws.WebsocketConsumer
	mode string
}

func (r *refuser) Connect(ctx context.Context) error {
	switch r.mode {
	case "return":
		return nil
	case "close":
		return r.Close(4000, "no")
	case "refuse401":
		return ginws.Refuse(http.StatusUnauthorized, "no token")
	case "error":
		return errors.New("database down")
	case "panic":
		panic("boom in connect")
	case "send-before-accept":
		if err := r.SendText("early"); !errors.Is(err, ginws.ErrNotAccepted) {
			return errors.New("send before accept did not fail with ErrNotAccepted")
		}
		return nil
	}
	return r.Accept()
}

func TestRefusals(t *testing.T) {
	cases := []struct {
		mode   string
		status int
		log    string
	}{
		{"return", http.StatusForbidden, "Connect did not accept"},
		{"close", http.StatusForbidden, "Connect did not accept"},
		{"refuse401", http.StatusUnauthorized, "no token"},
		{"error", http.StatusInternalServerError, "database down"},
		{"panic", http.StatusInternalServerError, "boom in connect"},
		{"send-before-accept", http.StatusForbidden, "Connect did not accept"},
	}
	for _, tc := range cases {
		t.Run(tc.mode, func(t *testing.T) {
			a := newApp(t, ginws.Config{}, func() ginws.Consumer { return &refuser{mode: tc.mode} })
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
			ok := newApp(t, ginws.Config{}, func() ginws.Consumer { return &echo{} })
			ok.ts.Communicator("/ws/x").MustConnect(testCtx(t))
		})
	}
}

func TestRefusedHandshakeLeavesNoTrace(t *testing.T) {
	lay := layer.NewMemory(layer.MemoryConfig{})
	a := newApp(t, ginws.Config{Layer: lay}, func() ginws.Consumer { return &grouped{refuse: true} })
	res, err := a.ts.Communicator("/ws/lobby").Connect(testCtx(t))
	if err != nil || res.Status != http.StatusForbidden {
		t.Fatalf("connect: %+v %v", res, err)
	}
	if st := lay.Stats(); st.Groups != 0 || st.Channels != 0 {
		t.Fatalf("a refused handshake left groups or channels behind: %+v", st)
	}
}

// picky accepts with a subprotocol and a header.
type picky struct{ ginws.WebsocketConsumer }

func (p *picky) Connect(ctx context.Context) error {
	if err := p.Accept(ginws.WithSubprotocol("not-offered")); err == nil {
		return errors.New("accepting a subprotocol the client did not offer must fail")
	}
	if err := p.Accept(ginws.WithSubprotocol("chat.v2"), ginws.WithHeader("X-Room", p.Scope().Param("room"))); err != nil {
		return err
	}
	if err := p.Accept(); !errors.Is(err, ginws.ErrAlreadyAccepted) {
		return errors.New("second Accept did not fail")
	}
	return p.SendText("hello from connect")
}

func TestAcceptSubprotocolHeadersAndSendInConnect(t *testing.T) {
	a := newApp(t, ginws.Config{}, func() ginws.Consumer { return &picky{} })
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

// grouped joins declared groups and relays group events.
type grouped struct {
	ginws.WebsocketConsumer
	refuse bool
	codes  codes
}

func (g *grouped) Groups() []string { return []string{"room_" + g.Scope().Param("room"), "everyone"} }

func (g *grouped) Events() ginws.Events {
	return ginws.Events{
		"chat.message": func(ctx context.Context, ev layer.Message) error {
			s, _ := ev.Str("text")
			return g.SendText("chat:" + s)
		},
		"ping_me": func(ctx context.Context, ev layer.Message) error { return g.SendText("pong:" + g.ChannelName()) },
	}
}

func (g *grouped) Connect(ctx context.Context) error {
	if g.refuse {
		return nil
	}
	// Declared groups are joined before Connect: a group send now reaches this consumer once
	// it is accepted.
	if err := g.GroupSend(ctx, "room_"+g.Scope().Param("room"), layer.Message{"type": "chat.message", "text": "joined"}); err != nil {
		return err
	}
	return g.Accept()
}

func (g *grouped) Receive(ctx context.Context, f ginws.ClientMessage) error {
	switch {
	case strings.HasPrefix(f.Text(), "say "):
		return g.GroupSend(ctx, "room_"+g.Scope().Param("room"), layer.Message{"type": "chat.message", "text": strings.TrimPrefix(f.Text(), "say ")})
	case f.Text() == "whoami":
		return g.SendText(g.ChannelName())
	case f.Text() == "panic":
		panic("handler bug")
	case f.Text() == "fail":
		return errors.New("handler failed")
	case f.Text() == "close4001":
		return ginws.NewCloseError(4001, "bye now")
	case strings.HasPrefix(f.Text(), "send-raw "):
		// Send an arbitrary event to ourselves through the layer.
		var ev layer.Message
		switch strings.TrimPrefix(f.Text(), "send-raw ") {
		case "notype":
			ev = layer.Message{"text": "x"}
		case "unknown":
			ev = layer.Message{"type": "no.such.handler"}
		case "underscore":
			ev = layer.Message{"type": "_private"}
		case "dot":
			ev = layer.Message{"type": ".hidden"}
		case "underscored":
			ev = layer.Message{"type": "chat_message", "text": "underscored"}
		}
		return g.Layer().Send(ctx, g.ChannelName(), ev)
	}
	return nil
}

func (g *grouped) Disconnect(ctx context.Context, code int) {
	if g.codes != nil {
		g.codes <- code
	}
}

func TestGroupsAndTypedEvents(t *testing.T) {
	lay := layer.NewMemory(layer.MemoryConfig{})
	cs := make(codes, 4)
	a := newApp(t, ginws.Config{Layer: lay}, func() ginws.Consumer { return &grouped{codes: cs} })
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

	if err := alice.SendText(ctx, "say hi"); err != nil {
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
	if err := bob.SendText(ctx, "send-raw underscored"); err != nil {
		t.Fatal(err)
	}
	if got := recvText(t, bob); got != "chat:underscored" {
		t.Fatalf("chat_message event: %q", got)
	}
	// Leaving: the groups are discarded when the connection ends.
	if err := bob.Disconnect(ctx); err != nil {
		t.Fatal(err)
	}
	if code := cs.wait(t); code != websocket.CloseNormalClosure {
		t.Fatalf("Disconnect code %d, want 1000", code)
	}
	if err := alice.SendText(ctx, "say after"); err != nil {
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

func TestBadEventsClose1011(t *testing.T) {
	for _, kind := range []string{"notype", "unknown", "underscore", "dot"} {
		t.Run(kind, func(t *testing.T) {
			lay := layer.NewMemory(layer.MemoryConfig{})
			cs := make(codes, 1)
			a := newApp(t, ginws.Config{Layer: lay}, func() ginws.Consumer { return &grouped{codes: cs} })
			ctx := testCtx(t)
			comm := a.ts.Communicator("/ws/lobby")
			comm.MustConnect(ctx)
			recvText(t, comm)
			if err := comm.SendText(ctx, "send-raw "+kind); err != nil {
				t.Fatal(err)
			}
			if code := waitClosed(t, comm); code != websocket.CloseInternalServerErr {
				t.Fatalf("close code %d, want 1011", code)
			}
			if code := cs.wait(t); code != websocket.CloseInternalServerErr {
				t.Fatalf("Disconnect code %d, want 1011", code)
			}
			want := map[string]string{"notype": `has no \"type\"`, "unknown": "no handler for event type", "underscore": "must not start with", "dot": "must not start with"}[kind]
			a.logs.waitFor(t, want)
			if st := lay.Stats(); st.Groups != 0 {
				t.Fatalf("groups left behind: %+v", st)
			}
		})
	}
}

func TestHandlerPanicAndErrorClose1011ProcessLives(t *testing.T) {
	for _, what := range []string{"panic", "fail"} {
		t.Run(what, func(t *testing.T) {
			lay := layer.NewMemory(layer.MemoryConfig{})
			cs := make(codes, 2)
			a := newApp(t, ginws.Config{Layer: lay}, func() ginws.Consumer { return &grouped{codes: cs} })
			ctx := testCtx(t)
			comm := a.ts.Communicator("/ws/lobby")
			comm.MustConnect(ctx)
			recvText(t, comm)
			if err := comm.SendText(ctx, what); err != nil {
				t.Fatal(err)
			}
			if code := waitClosed(t, comm); code != websocket.CloseInternalServerErr {
				t.Fatalf("close code %d, want 1011", code)
			}
			if code := cs.wait(t); code != websocket.CloseInternalServerErr {
				t.Fatalf("Disconnect ran with %d, want 1011", code)
			}
			if st := lay.Stats(); st.Groups != 0 {
				t.Fatalf("a failed consumer left its groups: %+v", st)
			}
			if got := a.srv.Stats().HandlerErrors; got != 1 {
				t.Fatalf("HandlerErrors = %d", got)
			}
			a.logs.waitFor(t, map[string]string{"panic": "handler bug", "fail": "handler failed"}[what])
			again := a.ts.Communicator("/ws/lobby")
			again.MustConnect(ctx)
			if got := recvText(t, again); got != "chat:joined" {
				t.Fatalf("a new connection after the failure: %q", got)
			}
		})
	}
}

func TestHandlerReturnsCloseError(t *testing.T) {
	cs := make(codes, 1)
	a := newApp(t, ginws.Config{}, func() ginws.Consumer { return &grouped{codes: cs} })
	ctx := testCtx(t)
	comm := a.ts.Communicator("/ws/lobby")
	comm.MustConnect(ctx)
	recvText(t, comm)
	if err := comm.SendText(ctx, "close4001"); err != nil {
		t.Fatal(err)
	}
	code, reason, err := comm.WaitClosed(ctx)
	if err != nil || code != 4001 || reason != "bye now" {
		t.Fatalf("close: %d %q %v", code, reason, err)
	}
	if got := cs.wait(t); got != 4001 {
		t.Fatalf("Disconnect code %d", got)
	}
	if strings.Contains(a.logs.String(), "level=ERROR") {
		t.Fatalf("a deliberate close must not log an error:\n%s", a.logs)
	}
}

func TestPointToPointFromHTTPHandler(t *testing.T) {
	a := newApp(t, ginws.Config{}, func() ginws.Consumer { return &grouped{} }, func(r *gin.Engine, s *ginws.Server) {
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
	recvText(t, comm)
	if err := comm.SendText(ctx, "whoami"); err != nil {
		t.Fatal(err)
	}
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

// serial checks that its handlers never overlap and mutates plain fields from all of them, so the
// race detector sees any overlap too.
type serial struct {
	ginws.WebsocketConsumer
	inside  atomic.Int32
	count   int
	overlap *atomic.Int32
}

func (s *serial) enter() func() {
	if s.inside.Add(1) != 1 {
		s.overlap.Add(1)
	}
	s.count++
	return func() { s.inside.Add(-1) }
}

func (s *serial) Groups() []string { return []string{"serial"} }

func (s *serial) Events() ginws.Events {
	return ginws.Events{"tick": func(ctx context.Context, ev layer.Message) error {
		defer s.enter()()
		time.Sleep(50 * time.Microsecond)
		return nil
	}}
}

func (s *serial) Receive(ctx context.Context, f ginws.ClientMessage) error {
	defer s.enter()()
	time.Sleep(50 * time.Microsecond)
	if f.Text() == "count" {
		return s.SendJSON(map[string]int{"count": s.count})
	}
	return nil
}

func TestHandlersNeverRunConcurrently(t *testing.T) {
	var overlap atomic.Int32
	lay := layer.NewMemory(layer.MemoryConfig{Capacity: 10000})
	a := newApp(t, ginws.Config{Layer: lay}, func() ginws.Consumer { return &serial{overlap: &overlap} })
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
