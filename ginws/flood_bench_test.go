package ginws_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/gorilla/websocket"

	"ginws.dev/ginws"
	"ginws.dev/ginws/layer"
)

// BenchmarkFloodOtherRooms measures what a flooding client costs the other rooms: one client
// sends as fast as it can into a room of 10 readers (reconnecting whenever it is closed, as a
// hostile client would), while 10 calm rooms of 10 clients each exchange messages; each op is one
// calm message, sent and received by all 10 members of its room. It reports the calm rooms'
// latency (p50, p99) and the flood's rate, without a limit and with Limits.Messages at 100/s
// (closing; dropping; closing with the flooder's reconnections limited to 1/s by
// HandshakesPerUser — every client here shares one address, so a per-IP rate would refuse them all).
//
//	go test -run '^$' -bench FloodOtherRooms -benchtime 2000x ./ginws/
func BenchmarkFloodOtherRooms(b *testing.B) {
	limit := ginws.Rate{PerSecond: 100, Burst: 100}
	for _, tc := range []struct {
		name   string
		limits ginws.Limits
	}{
		{"limit=off", ginws.Limits{}},
		{"limit=close", ginws.Limits{Messages: limit}},
		{"limit=drop", ginws.Limits{Messages: limit, DropMessages: true}},
		{"limit=close+handshakes", ginws.Limits{Messages: limit, HandshakesPerUser: ginws.Rate{PerSecond: 1, Burst: 5}}},
	} {
		b.Run(tc.name, func(b *testing.B) { benchFlood(b, tc.limits) })
	}
}

// floodRelay is a chat room consumer: what a client sends goes to its room's group.
func floodRelay() ginws.Consumer {
	c := &funcConsumer{}
	group := func(c *funcConsumer) string { return "room_" + c.Scope().Param("room") }
	c.groups = func(c *funcConsumer) []string { return []string{group(c)} }
	c.receive = func(ctx context.Context, c *funcConsumer, f ginws.ClientMessage) error {
		return c.GroupSend(ctx, group(c), layer.Message{"type": "say", "text": string(f.Data)})
	}
	c.events = func(c *funcConsumer) ginws.Events {
		return ginws.Events{"say": func(ctx context.Context, ev layer.Message) error {
			s, _ := ev.Str("text")
			return c.SendText(s)
		}}
	}
	return c
}

func benchFlood(b *testing.B, limits ginws.Limits) {
	srv := ginws.New(ginws.Config{Logger: discard(), Limits: limits, User: func(s *ginws.Scope) string { return s.Header().Get("X-User") }})
	r := gin.New()
	r.GET("/ws/:room", srv.Mount(floodRelay))
	ts := httptest.NewServer(r)
	defer ts.Close()
	defer srv.Shutdown(context.Background())
	url := "ws" + strings.TrimPrefix(ts.URL, "http") + "/ws/"
	users := 0
	dial := func(room string) *websocket.Conn {
		users++
		c, _, err := websocket.DefaultDialer.Dial(url+room, http.Header{"X-User": {fmt.Sprint("user", users)}})
		if err != nil {
			b.Fatal(err)
		}
		return c
	}
	drain := func(c *websocket.Conn) {
		for {
			if _, _, err := c.ReadMessage(); err != nil {
				return
			}
		}
	}

	const rooms, members = 10, 10
	calm := make([][]*websocket.Conn, rooms)
	for i := range calm {
		for range members {
			calm[i] = append(calm[i], dial(fmt.Sprint("calm", i)))
		}
	}
	for range members {
		c := dial("flood")
		defer c.Close()
		go drain(c)
	}
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	flooded := make(chan int, 1)
	go func() {
		sent := 0
		defer func() { flooded <- sent }()
		msg := []byte("spam spam spam spam spam spam spam spam")
		for ctx.Err() == nil {
			c, _, err := websocket.DefaultDialer.Dial(url+"flood", http.Header{"X-User": {"mallory"}})
			if err != nil { // 429: try again soon, as a hostile client would
				time.Sleep(10 * time.Millisecond)
				continue
			}
			go drain(c)
			for ctx.Err() == nil {
				if err := c.WriteMessage(websocket.TextMessage, msg); err != nil {
					break
				}
				sent++
			}
			c.Close()
		}
	}()
	time.Sleep(100 * time.Millisecond) // let the flood start

	lat := make([]time.Duration, 0, b.N)
	start := time.Now()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		room := calm[i%rooms]
		text := fmt.Sprint(i)
		t0 := time.Now()
		if err := room[0].WriteMessage(websocket.TextMessage, []byte(text)); err != nil {
			b.Fatal(err)
		}
		for _, c := range room {
			_, got, err := c.ReadMessage()
			if err != nil || string(got) != text {
				b.Fatalf("calm room: %q, %v; want %q", got, err, text)
			}
		}
		lat = append(lat, time.Since(t0))
	}
	b.StopTimer()
	elapsed := time.Since(start)
	stop()
	for _, room := range calm {
		for _, c := range room {
			c.Close()
		}
	}
	sent := <-flooded
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
	b.ReportMetric(float64(sent)/elapsed.Seconds(), "flood-msgs/s")
	b.ReportMetric(float64(srv.Stats().MessagesLimited)/elapsed.Seconds(), "limited/s")
}
