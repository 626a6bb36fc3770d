package middleware_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"go.uber.org/goleak"

	"ginws.dev/ginws"
	"ginws.dev/ginws/wstest"
)

func TestMain(m *testing.M) {
	gin.SetMode(gin.TestMode)
	goleak.VerifyTestMain(m)
}

// probe is a consumer that reports what it saw in its Scope and counts Connect calls, so a test
// can tell that a refused handshake never reached the consumer.
type probe struct {
	ginws.JSONConsumer[map[string]any]
	connects *atomic.Int32
	see      func(p *probe) map[string]any
}

func (p *probe) Connect(ctx context.Context) error {
	p.connects.Add(1)
	if err := p.Accept(); err != nil {
		return err
	}
	return p.SendJSON(p.see(p))
}

type harness struct {
	ws       *ginws.Server
	engine   *gin.Engine
	ts       *wstest.Server
	connects atomic.Int32
}

// newHarness builds an engine; routes are added by the caller before start.
func newHarness(t *testing.T) *harness {
	h := &harness{ws: ginws.New(ginws.Config{Logger: discardLogger()}), engine: gin.New()}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = h.ws.Shutdown(ctx)
	})
	return h
}

func (h *harness) mount(see func(p *probe) map[string]any) gin.HandlerFunc {
	return h.ws.Mount(func() ginws.Consumer { return &probe{connects: &h.connects, see: see} })
}

func (h *harness) start(t *testing.T) *wstest.Server {
	h.ts = wstest.NewServer(t, h.engine)
	return h.ts
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// refused connects and asserts the handshake was refused with status, before any upgrade and
// before the consumer ran.
func (h *harness) refused(t *testing.T, comm *wstest.Communicator, status int) {
	t.Helper()
	before := h.connects.Load()
	res, err := comm.Connect(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	if res.Accepted || res.Status != status {
		t.Fatalf("handshake: accepted=%v status=%d, want refused with %d", res.Accepted, res.Status, status)
	}
	if n := h.connects.Load() - before; n != 0 {
		t.Fatalf("the consumer's Connect ran %d times for a handshake refused by middleware", n)
	}
}

// accepted connects, asserts success and returns what the consumer saw.
func (h *harness) accepted(t *testing.T, comm *wstest.Communicator) (map[string]any, wstest.ConnectResult) {
	t.Helper()
	res := comm.MustConnect(ctxT(t))
	var seen map[string]any
	if err := comm.ReceiveJSON(ctxT(t), &seen); err != nil {
		t.Fatal(err)
	}
	return seen, res
}
