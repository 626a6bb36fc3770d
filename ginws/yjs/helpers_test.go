package yjs_test

import (
	"context"
	"encoding/hex"
	"io"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/gin-gonic/gin"

	"ginws.dev/ginws"
	"ginws.dev/ginws/layer"
	"ginws.dev/ginws/wstest"
	"ginws.dev/ginws/yjs"
	"ginws.dev/ginws/yjs/yproto"
)

// Updates made by the real yjs package (testdata/js/fixtures.mjs): client 1 types "hello" into
// the text "t", client 2 appends " world", client 1 sets m.k = "v", client 2 deletes "hello ".
var (
	fxHello       = unhex("01010100040101740568656c6c6f00")
	fxWorld       = unhex("010102008401040620776f726c6400")
	fxMapSet      = unhex("010101052801016d016b0177017600")
	fxDeleteHello = unhex("00020201000101010005")
	fxSVHello     = unhex("010105") // the state vector after fxHello: client 1 at clock 5
)

func unhex(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func quietLogger() *slog.Logger {
	if os.Getenv("YJS_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// app is one "process": a Gin engine with a ginws Server and a yjs Server on a real HTTP server.
type app struct {
	ws   *ginws.Server
	ys   *yjs.Server
	http *wstest.Server
}

// newApp starts an app on layer (nil: its own MemoryLayer). Access is read-only for URLs with
// ?view=1 and none for ?deny=1. Everything is shut down when the test ends.
func newApp(t testing.TB, lay layer.Layer, cfg yjs.Config) *app {
	t.Helper()
	ws := ginws.New(ginws.Config{Layer: lay, Logger: quietLogger()})
	if cfg.Logger == nil {
		cfg.Logger = quietLogger()
	}
	if cfg.Authorize == nil {
		cfg.Authorize = func(ctx context.Context, s *ginws.Scope, room string) (yjs.Access, error) {
			switch {
			case s.QueryValue("deny") == "1":
				return yjs.NoAccess, nil
			case s.QueryValue("view") == "1":
				return yjs.ReadOnly, nil
			}
			return yjs.ReadWrite, nil
		}
	}
	ys := yjs.New(ws, cfg)
	r := gin.New()
	r.GET("/yjs/*room", ws.Mount(ys.Consumer))
	a := &app{ws: ws, ys: ys, http: wstest.NewServer(t, r)}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := ws.Shutdown(ctx); err != nil {
			t.Errorf("ginws shutdown: %v", err)
		}
		if err := ys.Close(ctx); err != nil {
			t.Errorf("yjs close: %v", err)
		}
	})
	return a
}

// client is a y-protocols client at the message level.
type client struct {
	t testing.TB
	*wstest.Communicator
}

// dial connects to path and checks the opening message: sync step 1 with the room's state
// vector, which it returns.
func (a *app) dial(t testing.TB, path string) (*client, []byte) {
	t.Helper()
	c := &client{t: t, Communicator: wstest.New(t, a.http.WSURL(path), wstest.Origin(a.http.URL))}
	c.MustConnect(ctxT(t))
	m := c.next(yproto.MsgSync)
	if m.SyncType != yproto.SyncStep1 {
		t.Fatalf("first message: sync type %d, want step 1", m.SyncType)
	}
	return c, m.Payload
}

// next receives the next message and checks its type.
func (c *client) next(typ uint64) yproto.Message {
	c.t.Helper()
	b, err := c.ReceiveBytes(ctxT(c.t))
	if err != nil {
		c.t.Fatalf("receive: %v", err)
	}
	m, err := yproto.Decode(b)
	if err != nil {
		c.t.Fatalf("decode %x: %v", b, err)
	}
	if m.Type != typ {
		c.t.Fatalf("got message type %d (%x), want %d", m.Type, b, typ)
	}
	return m
}

func (c *client) send(b []byte) {
	c.t.Helper()
	if err := c.SendBytes(ctxT(c.t), b); err != nil {
		c.t.Fatalf("send: %v", err)
	}
}

// quiet checks that nothing arrives for a moment.
func (c *client) quiet() {
	c.t.Helper()
	if err := c.ReceiveNothing(ctxT(c.t), 150*time.Millisecond); err != nil {
		c.t.Fatal(err)
	}
}

func awarenessMsg(clientID, clock uint64, state string) []byte {
	return yproto.AppendAwareness(nil, yproto.AppendAwarenessUpdate(nil, []yproto.AwarenessEntry{{ClientID: clientID, Clock: clock, State: []byte(state)}}))
}

// waitFor polls cond until it holds or the test's patience ends.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// nextAny receives the next message, whatever its type.
func (c *client) nextAny() yproto.Message {
	c.t.Helper()
	b, err := c.ReceiveBytes(ctxT(c.t))
	if err != nil {
		c.t.Fatalf("receive: %v", err)
	}
	m, err := yproto.Decode(b)
	if err != nil {
		c.t.Fatalf("decode %x: %v", b, err)
	}
	return m
}
