package ginws_test

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gin-gonic/gin"

	"ginws.dev/ginws"
	"ginws.dev/ginws/layer"
)

// newsStream streams the group "news.ROOM" with the history's positions as ids.
type newsStream struct{ room string }

func (n *newsStream) Groups() []string { return []string{"news." + n.room} }

func (n *newsStream) Connect(ctx context.Context, s *ginws.Stream) error {
	if s.Scope().Query().Get("refuse") != "" {
		return ginws.Refuse(http.StatusForbidden, "asked to")
	}
	return nil
}

func (n *newsStream) Events() ginws.Events { return ginws.Events{"news.item": newsItem} }

var newsItem = ginws.RelayJSON(func(ev layer.Message, pos layer.Position) (any, error) {
	return map[string]any{"text": ev["text"]}, nil
})

type sseEvent struct{ id, data string }

// sseReader reads events from a text/event-stream body, skipping comments and retry lines.
type sseReader struct {
	sc       *bufio.Scanner
	comments int
}

func (r *sseReader) next(t *testing.T) sseEvent {
	t.Helper()
	var ev sseEvent
	for r.sc.Scan() {
		line := r.sc.Text()
		switch {
		case line == "":
			if ev.data != "" {
				return ev
			}
		case strings.HasPrefix(line, ":"):
			r.comments++
		case strings.HasPrefix(line, "id: "):
			ev.id = line[4:]
		case strings.HasPrefix(line, "data: "):
			ev.data = line[6:]
		}
	}
	t.Fatalf("stream ended: %v", r.sc.Err())
	return ev
}

// comment reads up to the next comment line (a keep-alive); an event before it fails the test.
func (r *sseReader) comment(t *testing.T) {
	t.Helper()
	for r.sc.Scan() {
		switch line := r.sc.Text(); {
		case strings.HasPrefix(line, ":"):
			r.comments++
			return
		case strings.HasPrefix(line, "data: "):
			t.Fatalf("an event (%s) where a keep-alive comment was due", line)
		}
	}
	t.Fatalf("stream ended: %v", r.sc.Err())
}

func startSSE(t *testing.T, cfg ginws.Config) (*ginws.Server, *httptest.Server, layer.Layer) {
	t.Helper()
	lay := layer.NewMemory(layer.MemoryConfig{History: []layer.HistoryRule{{Pattern: "news.*"}}})
	cfg.Layer = lay
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	ws := ginws.New(cfg)
	r := gin.New()
	// The factory cannot see the request: the consumer takes the room from the path here.
	r.GET("/room/:room", func(c *gin.Context) {
		ws.MountSSE(func() ginws.StreamConsumer { return &newsStream{room: c.Param("room")} })(c)
	})
	ts := httptest.NewServer(r)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = ws.Shutdown(ctx)
		ts.Close()
		_ = lay.Close()
	})
	return ws, ts, lay
}

func getStream(t *testing.T, url, lastID string) (*http.Response, *sseReader) {
	t.Helper()
	// A bound on a hang only: a stream that stalls fails the test after a minute.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp, &sseReader{sc: bufio.NewScanner(resp.Body)}
}

func waitMembers(t *testing.T, ws *ginws.Server, n int64) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); ws.Stats().Open < n; {
		if time.Now().After(deadline) {
			t.Fatalf("%d streams open, want %d", ws.Stats().Open, n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// A stream gets the group's events with their positions as ids; reconnecting with Last-Event-ID
// replays what it missed, then goes live; keep-alive comments flow while nothing happens.
func TestSSEStreamsAndResumes(t *testing.T) {
	t.Parallel()
	ws, ts, lay := startSSE(t, ginws.Config{PingInterval: 50 * time.Millisecond})
	resp, rd := getStream(t, ts.URL+"/room/a", "")
	if ct := resp.Header.Get("Content-Type"); resp.StatusCode != 200 || ct != "text/event-stream" {
		t.Fatalf("HTTP %d, Content-Type %q", resp.StatusCode, ct)
	}
	waitMembers(t, ws, 1)
	ctx := context.Background()
	for i := 1; i <= 3; i++ {
		if err := lay.GroupSend(ctx, "news.a", layer.Message{"type": "news.item", "text": fmt.Sprint("t", i)}); err != nil {
			t.Fatal(err)
		}
	}
	var ids []string
	for i := 1; i <= 3; i++ {
		ev := rd.next(t)
		if ev.data != fmt.Sprintf(`{"text":"t%d"}`, i) || ev.id == "" {
			t.Fatalf("event %d: %+v", i, ev)
		}
		ids = append(ids, ev.id)
	}
	resp.Body.Close()
	for i := 4; i <= 5; i++ {
		if err := lay.GroupSend(ctx, "news.a", layer.Message{"type": "news.item", "text": fmt.Sprint("t", i)}); err != nil {
			t.Fatal(err)
		}
	}
	_, rd = getStream(t, ts.URL+"/room/a", ids[2])
	for i := 4; i <= 5; i++ {
		if ev := rd.next(t); ev.data != fmt.Sprintf(`{"text":"t%d"}`, i) {
			t.Fatalf("replayed event: %+v, want t%d", ev, i)
		}
	}
	// Nothing happens now: keep-alive comments flow (PingInterval 50 ms). Waiting for two,
	// rather than counting them after a sleep, leaves the ticker's timing out of it.
	rd.comment(t)
	rd.comment(t)
	if err := lay.GroupSend(ctx, "news.a", layer.Message{"type": "news.item", "text": "t6"}); err != nil {
		t.Fatal(err)
	}
	if ev := rd.next(t); ev.data != `{"text":"t6"}` {
		t.Fatalf("live event after the replay: %+v", ev)
	}
}

// Refusals answer with their status; shutdown ends open streams and Wait sees them gone.
func TestSSERefuseAndShutdown(t *testing.T) {
	t.Parallel()
	ws, ts, _ := startSSE(t, ginws.Config{})
	resp, _ := getStream(t, ts.URL+"/room/b?refuse=1", "")
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("refused stream: HTTP %d", resp.StatusCode)
	}
	_, rd := getStream(t, ts.URL+"/room/b", "")
	waitMembers(t, ws, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := ws.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	for rd.sc.Scan() {
	}
	if st := ws.Stats(); st.Open != 0 {
		t.Fatalf("%d streams open after Shutdown", st.Open)
	}
	resp, _ = getStream(t, ts.URL+"/room/b", "")
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("stream during shutdown: HTTP %d", resp.StatusCode)
	}
}

// A client that stops reading is ended once its queue is full, not left to miss events in silence.
func TestSSESlowClientEnded(t *testing.T) {
	t.Parallel()
	ws, ts, lay := startSSE(t, ginws.Config{})
	resp, _ := getStream(t, ts.URL+"/room/slow", "")
	defer resp.Body.Close()
	waitMembers(t, ws, 1)
	pad := strings.Repeat("x", 8<<10)
	for i := 0; ws.Stats().SlowClients == 0; i++ {
		if i == 20000 {
			t.Fatalf("20000 events of 8 KiB to a client that reads nothing, and it was not ended: %+v", ws.Stats())
		}
		if err := lay.GroupSend(context.Background(), "news.slow", layer.Message{"type": "news.item", "text": pad}); err != nil {
			t.Fatal(err)
		}
	}
	for deadline := time.Now().Add(5 * time.Second); ws.Stats().Open != 0; {
		if time.Now().After(deadline) {
			t.Fatalf("the slow stream is still open: %+v", ws.Stats())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// http.Server's ReadTimeout (30 s in Server.HTTPServer) must not end a stream that lives longer.
func TestSSEOutlivesReadTimeout(t *testing.T) {
	t.Parallel()
	lay := layer.NewMemory(layer.MemoryConfig{History: []layer.HistoryRule{{Pattern: "news.*"}}})
	defer lay.Close()
	ws := ginws.New(ginws.Config{Layer: lay, Logger: slog.New(slog.DiscardHandler)})
	r := gin.New()
	r.GET("/room/:room", func(c *gin.Context) {
		ws.MountSSE(func() ginws.StreamConsumer { return &newsStream{room: c.Param("room")} })(c)
	})
	ts := httptest.NewUnstartedServer(r)
	ts.Config.ReadTimeout = 100 * time.Millisecond
	ts.Start()
	defer ts.Close()
	defer ws.Shutdown(context.Background())
	_, rd := getStream(t, ts.URL+"/room/long", "")
	waitMembers(t, ws, 1)
	time.Sleep(400 * time.Millisecond)
	if err := lay.GroupSend(context.Background(), "news.long", layer.Message{"type": "news.item", "text": "late"}); err != nil {
		t.Fatal(err)
	}
	if ev := rd.next(t); ev.data != `{"text":"late"}` {
		t.Fatalf("event after the read timeout: %+v", ev)
	}
}
