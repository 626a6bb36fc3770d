package ginws_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"ginws.dev/ginws"
	"ginws.dev/ginws/wstest"
)

// Every log line about a connection carries its channel, route, path and user, so that one
// connection's life can be followed with grep.
func TestConnectionLogAttributes(t *testing.T) {
	t.Parallel()
	names := make(chan string, 1)
	a := newApp(t, ginws.Config{User: func(s *ginws.Scope) string { return s.Header().Get("X-User") }},
		consumer(funcConsumer{
			connect: func(ctx context.Context, c *funcConsumer) error {
				names <- c.ChannelName()
				return c.Accept()
			},
			receive: func(context.Context, *funcConsumer, ginws.ClientMessage) error { return errors.New("boom") },
		}))
	ctx := testCtx(t)
	c := a.ts.Communicator("/ws/lobby", wstest.Header("X-User", "ada"))
	c.MustConnect(ctx)
	channel := <-names
	if err := c.SendText(ctx, "x"); err != nil {
		t.Fatal(err)
	}
	if code := waitClosed(t, c); code != ginws.CloseInternalError {
		t.Fatalf("closed with %d", code)
	}
	a.logs.waitFor(t, "handler failed")
	for _, line := range strings.Split(a.logs.String(), "\n") {
		if !strings.Contains(line, "handler failed") {
			continue
		}
		for _, attr := range []string{"channel=" + channel, "route=/ws/:room", "path=/ws/lobby", "user=ada"} {
			if !strings.Contains(line, attr) {
				t.Errorf("the log line lacks %s: %s", attr, line)
			}
		}
	}
}
