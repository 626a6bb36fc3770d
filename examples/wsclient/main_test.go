package main

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"strings"
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

// shout answers each message in upper case; "bye" closes the connection with 4000.
type shout struct{ ginws.WebsocketConsumer }

func (s *shout) Connect(ctx context.Context) error {
	if s.Scope().Header().Get("X-Token") != "open sesame" {
		return ginws.Refuse(http.StatusUnauthorized, "no token")
	}
	return s.Accept()
}

func (s *shout) Receive(ctx context.Context, m ginws.ClientMessage) error {
	if m.Text() == "bye" {
		return ginws.NewCloseError(4000, "see you")
	}
	return s.SendText(strings.ToUpper(m.Text()))
}

func start(t *testing.T) string {
	ws := ginws.New(ginws.Config{Logger: slog.New(slog.DiscardHandler)})
	r := gin.New()
	r.GET("/shout", ws.Mount(func() ginws.Consumer { return new(shout) }))
	srv := wstest.NewServer(t, r)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = ws.Shutdown(ctx)
	})
	return srv.WSURL("/shout")
}

func TestClient(t *testing.T) {
	url := start(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	// Lines in, messages out; end of input closes with 1000 after the answers.
	var out, errs strings.Builder
	code := run(ctx, []string{"-H", "X-Token: open sesame", url}, strings.NewReader("hello\nagain\n"), &out, &errs)
	if code != 0 || out.String() != "HELLO\nAGAIN\n" || !strings.Contains(errs.String(), "closed: 1000") {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, out.String(), errs.String())
	}

	// A refused handshake shows the HTTP status.
	out.Reset()
	errs.Reset()
	code = run(ctx, []string{url}, strings.NewReader(""), &out, &errs)
	if code != 1 || !strings.Contains(errs.String(), "HTTP 401") {
		t.Fatalf("refused: exit %d, stderr %q", code, errs.String())
	}

	// The server closing first ends the client with its code, while stdin is still open.
	stdin, typing := io.Pipe()
	defer typing.Close()
	errs.Reset()
	exit := make(chan int, 1)
	go func() { exit <- run(ctx, []string{"-H", "X-Token: open sesame", url}, stdin, io.Discard, &errs) }()
	if _, err := io.WriteString(typing, "bye\n"); err != nil {
		t.Fatal(err)
	}
	if code := <-exit; code != 1 || !strings.Contains(errs.String(), "closed: 4000 see you") {
		t.Fatalf("server close: exit %d, stderr %q", code, errs.String())
	}
}

func TestUsage(t *testing.T) {
	var errs strings.Builder
	if code := run(context.Background(), nil, strings.NewReader(""), io.Discard, &errs); code != 2 || !strings.Contains(errs.String(), "usage:") {
		t.Fatalf("no URL: exit %d, stderr %q", code, errs.String())
	}
}
