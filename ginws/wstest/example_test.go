package wstest_test

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/gin-gonic/gin"

	"ginws.dev/ginws"
	"ginws.dev/ginws/wstest"
)

// Shout is the consumer under test: it refuses handshakes without ?name=, answers every text
// message in upper case, and closes with 4000 on "bye".
type Shout struct{ ginws.WebsocketConsumer }

func (s *Shout) Connect(ctx context.Context) error {
	if s.Scope().QueryValue("name") == "" {
		return nil // not accepted: HTTP 403, as in Channels
	}
	return s.Accept()
}

func (s *Shout) Receive(ctx context.Context, m ginws.ClientMessage) error {
	if m.Text() == "bye" {
		return ginws.NewCloseError(4000, "bye, "+s.Scope().QueryValue("name"))
	}
	return s.SendText(strings.ToUpper(m.Text()))
}

// newEngine is the app: its real Gin engine is what the communicator talks to.
func newEngine(ws *ginws.Server) *gin.Engine {
	r := gin.New()
	r.GET("/ws/shout", ws.Mount(func() ginws.Consumer { return new(Shout) }))
	return r
}

// A test of Shout, as it reads in a _test.go file — with the test's t where this Example, which
// gets no *testing.T, uses a stand-in.
func Example() {
	t := new(exampleT)
	defer t.cleanup()

	ctx := context.Background()
	ws := ginws.New(ginws.Config{Logger: slog.New(slog.DiscardHandler)})
	defer ws.Shutdown(ctx)
	srv := wstest.NewServer(t, newEngine(ws)) // closed when the test ends

	// A refusal is a result, not an error.
	res, err := srv.Communicator("/ws/shout").Connect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Println("without a name:", res.Accepted, res.Status)

	comm := srv.Communicator("/ws/shout?name=ada")
	comm.MustConnect(ctx) // fails the test unless accepted
	if err := comm.SendText(ctx, "hello"); err != nil {
		t.Fatal(err)
	}
	reply, err := comm.ReceiveText(ctx) // waits up to comm.Timeout (5 s) when ctx has no deadline
	if err != nil {
		t.Fatal(err)
	}
	fmt.Println("reply:", reply)
	if err := comm.ReceiveNothing(ctx, 50*time.Millisecond); err != nil {
		t.Fatal(err) // something else arrived
	}
	if err := comm.SendText(ctx, "bye"); err != nil {
		t.Fatal(err)
	}
	code, reason, err := comm.WaitClosed(ctx)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Println("closed:", code, reason)
	// Output:
	// without a name: false 403
	// reply: HELLO
	// closed: 4000 bye, ada
}

// exampleT stands in for a test's *testing.T, which Example functions do not get. wstest uses only
// Helper, Cleanup and Fatalf; the embedded interface supplies the rest (calling it would panic).
type exampleT struct {
	testing.TB
	cleanups []func()
}

func (t *exampleT) Helper()                           {}
func (t *exampleT) Cleanup(f func())                  { t.cleanups = append(t.cleanups, f) }
func (t *exampleT) Fatal(args ...any)                 { panic(fmt.Sprint(args...)) }
func (t *exampleT) Fatalf(format string, args ...any) { panic(fmt.Sprintf(format, args...)) }

// cleanup runs the cleanups as a test's end would, last registered first.
func (t *exampleT) cleanup() {
	for i := len(t.cleanups) - 1; i >= 0; i-- {
		t.cleanups[i]()
	}
}
