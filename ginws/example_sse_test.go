package ginws_test

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/gin-gonic/gin"

	"ginws.dev/ginws"
	"ginws.dev/ginws/layer"
)

// Ticker streams the group "ticks" as server-sent events, resuming from the client's
// Last-Event-ID.
type Ticker struct{}

func (Ticker) Connect(ctx context.Context, s *ginws.Stream) error {
	since, _ := s.LastEventID()
	_, err := s.GroupAddSince(ctx, "ticks", since)
	return err
}

func (Ticker) Events() ginws.Events { return ginws.Events{"tick": tick} }

var tick = ginws.RelayJSON(func(ev layer.Message) (any, error) { return ev["n"], nil })

// A server-sent event stream of a group with history: each event's id is its position, so an
// EventSource that reconnects (sending Last-Event-ID) resumes where it stopped.
func ExampleServer_MountSSE() {
	lay := layer.NewMemory(layer.MemoryConfig{History: []layer.HistoryRule{{Pattern: "ticks"}}})
	ws := ginws.New(ginws.Config{Layer: lay, Logger: slog.New(slog.DiscardHandler)})
	r := gin.New()
	r.GET("/events", ws.MountSSE(func() ginws.StreamConsumer { return Ticker{} }))
	ts := httptest.NewServer(r)
	defer ts.Close()
	defer ws.Shutdown(context.Background())

	ctx := context.Background()
	_ = lay.GroupSend(ctx, "ticks", layer.Message{"type": "tick", "n": 1}) // before the client
	req, _ := http.NewRequest(http.MethodGet, ts.URL+"/events", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer resp.Body.Close()
	for ws.Stats().Open == 0 {
		time.Sleep(time.Millisecond)
	}
	_ = lay.GroupSend(ctx, "ticks", layer.Message{"type": "tick", "n": 2})
	sc := bufio.NewScanner(resp.Body)
	for i := 0; i < 4 && sc.Scan(); i++ {
		line := sc.Text()
		if len(line) > 4 && line[:4] == "id: " {
			line = "id: 2-<epoch>"
		}
		fmt.Println(line)
	}
	// Output:
	// retry: 1000
	//
	// id: 2-<epoch>
	// data: 2
}
