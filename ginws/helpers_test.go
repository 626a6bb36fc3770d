package ginws_test

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gin-gonic/gin"

	"ginws.dev/ginws"
	"ginws.dev/ginws/wstest"
)

// logBuffer collects log lines for assertions.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// waitFor polls cond until it holds or the deadline passes.
func (l *logBuffer) waitFor(t *testing.T, substr string) {
	t.Helper()
	// A deadline for what must happen, not a timing assertion: generous, as parallel tests under
	// the race detector on a loaded machine can take seconds to get there.
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(l.String(), substr) {
		if time.Now().After(deadline) {
			t.Fatalf("log never contained %q; log:\n%s", substr, l.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

type app struct {
	srv  *ginws.Server
	ts   *wstest.Server
	logs *logBuffer
}

// newApp serves factory at /ws/:room (and /ws/:room/) with cfg, logging to a buffer.
func newApp(t *testing.T, cfg ginws.Config, factory func() ginws.Consumer, extra ...func(*gin.Engine, *ginws.Server)) *app {
	t.Helper()
	logs := &logBuffer{}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	srv := ginws.New(cfg)
	r := gin.New()
	r.GET("/ws/:room", srv.Mount(factory))
	for _, f := range extra {
		f(r, srv)
	}
	ts := wstest.NewServer(t, r)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		if n := ginws.BadTransitions(srv); n != 0 {
			t.Errorf("the connection state machine refused %d transitions: a runtime bug", n)
		}
	})
	return &app{srv: srv, ts: ts, logs: logs}
}

func discard() *slog.Logger { return slog.New(slog.DiscardHandler) }

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// recv receives one frame's text or fails.
func recvText(t *testing.T, c *wstest.Communicator) string {
	t.Helper()
	s, err := c.ReceiveText(testCtx(t))
	if err != nil {
		t.Fatalf("receive: %v", err)
	}
	return s
}

func waitClosed(t *testing.T, c *wstest.Communicator) int {
	t.Helper()
	code, _, err := c.WaitClosed(testCtx(t))
	if err != nil {
		t.Fatalf("wait for close: %v", err)
	}
	return code
}

// codes records Disconnect codes.
type codes chan int

func (c codes) wait(t *testing.T) int {
	t.Helper()
	select {
	case code := <-c:
		return code
	case <-time.After(20 * time.Second):
		t.Fatal("Disconnect was not called")
		return 0
	}
}

// funcConsumer is a consumer made of the test's own functions, so that what a consumer does is
// written where the test asserts what comes of it. A nil function keeps WebsocketConsumer's
// default: Connect accepts, Receive ignores the frame, Disconnect does nothing; nil groups and
// events declare none.
type funcConsumer struct {
	ginws.WebsocketConsumer
	groups     func(c *funcConsumer) []string
	events     func(c *funcConsumer) ginws.Events
	connect    func(ctx context.Context, c *funcConsumer) error
	receive    func(ctx context.Context, c *funcConsumer, f ginws.ClientMessage) error
	disconnect func(ctx context.Context, c *funcConsumer, code int)
}

// consumer returns a factory of fresh copies of fc, one per connection.
func consumer(fc funcConsumer) func() ginws.Consumer {
	return func() ginws.Consumer {
		c := fc
		return &c
	}
}

func (c *funcConsumer) Groups() []string {
	if c.groups == nil {
		return nil
	}
	return c.groups(c)
}

func (c *funcConsumer) Events() ginws.Events {
	if c.events == nil {
		return nil
	}
	return c.events(c)
}

func (c *funcConsumer) Connect(ctx context.Context) error {
	if c.connect == nil {
		return c.WebsocketConsumer.Connect(ctx)
	}
	return c.connect(ctx, c)
}

func (c *funcConsumer) Receive(ctx context.Context, f ginws.ClientMessage) error {
	if c.receive == nil {
		return nil
	}
	return c.receive(ctx, c, f)
}

func (c *funcConsumer) Disconnect(ctx context.Context, code int) {
	if c.disconnect != nil {
		c.disconnect(ctx, c, code)
	}
}

// record is a funcConsumer's disconnect that records the code.
func (c codes) record(ctx context.Context, _ *funcConsumer, code int) { c <- code }

// acceptWith is a funcConsumer's connect that accepts with opts.
func acceptWith(opts ...ginws.AcceptOption) func(context.Context, *funcConsumer) error {
	return func(ctx context.Context, c *funcConsumer) error { return c.Accept(opts...) }
}
