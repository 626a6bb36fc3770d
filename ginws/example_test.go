package ginws_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/gorilla/websocket"

	"ginws.dev/ginws"
	"ginws.dev/ginws/layer"
)

// Upper is a consumer: it accepts every handshake and answers each text frame in upper case.
type Upper struct {
	ginws.WebsocketConsumer
}

func (u *Upper) Receive(ctx context.Context, f ginws.ClientMessage) error {
	return u.SendText(strings.ToUpper(f.Text()))
}

// A Gin app adds a WebSocket route next to its HTTP routes.
func Example() {
	ws := ginws.New(ginws.Config{}) // in-memory layer, same-origin handshakes
	r := gin.New()
	r.GET("/ws/upper", ws.Mount(func() ginws.Consumer { return new(Upper) }))

	srv := httptest.NewServer(r)
	defer srv.Close()
	defer ws.Shutdown(context.Background()) // http.Server.Shutdown does not close WebSockets

	conn, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(srv.URL, "http")+"/ws/upper", nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer conn.Close()
	_ = conn.WriteMessage(websocket.TextMessage, []byte("hello"))
	_, reply, _ := conn.ReadMessage()
	fmt.Println(string(reply))
	// Output: HELLO
}

// Room is a JSON consumer with a declared group and a typed event, like Channels' chat tutorial.
type Room struct {
	ginws.JSONConsumer[map[string]string]
}

func (r *Room) Groups() []string { return []string{"room_" + r.Scope().Param("name")} }

func (r *Room) ReceiveJSON(ctx context.Context, in map[string]string) error {
	return r.GroupSend(ctx, "room_"+r.Scope().Param("name"), layer.Message{"type": "room.message", "text": in["text"]})
}

func (r *Room) Events() ginws.Events {
	return ginws.Events{"room.message": func(ctx context.Context, ev layer.Message) error {
		text, _ := ev.Str("text")
		return r.SendJSON(map[string]string{"said": text})
	}}
}

// Group events reach every member; an HTTP handler can send to the same group.
func Example_groups() {
	ws := ginws.New(ginws.Config{Logger: slog.New(slog.DiscardHandler)})
	r := gin.New()
	r.GET("/ws/room/:name", ws.Mount(func() ginws.Consumer { return new(Room) }))
	r.POST("/announce/:name", func(c *gin.Context) {
		_ = ws.Layer().GroupSend(c, "room_"+c.Param("name"), layer.Message{"type": "room.message", "text": "from HTTP"})
	})
	srv := httptest.NewServer(r)
	defer srv.Close()
	defer ws.Shutdown(context.Background())

	dial := func() *websocket.Conn {
		c, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(srv.URL, "http")+"/ws/room/lobby", nil)
		if err != nil {
			panic(err)
		}
		return c
	}
	a, b := dial(), dial()
	defer a.Close()
	defer b.Close()
	_ = a.WriteJSON(map[string]string{"text": "hi"})
	var got map[string]string
	_ = b.ReadJSON(&got)
	fmt.Println("b:", got["said"])
	_ = a.ReadJSON(&got)
	fmt.Println("a:", got["said"])
	resp, _ := http.Post(srv.URL+"/announce/lobby", "text/plain", nil)
	resp.Body.Close()
	_ = b.ReadJSON(&got)
	fmt.Println("b:", got["said"])
	// Output:
	// b: hi
	// a: hi
	// b: from HTTP
}

type tenant struct{ Name string }

// Middleware stores typed values; consumers read them back from the Scope without type assertions.
func ExampleKey() {
	tenantKey := ginws.NewKey[*tenant]("myapp.tenant")
	r := gin.New()
	r.GET("/ws", func(c *gin.Context) {
		tenantKey.Set(c, &tenant{Name: "acme"}) // in middleware
		scope := ginws.NewScope(c)              // what Mount builds for the consumer
		t, ok := tenantKey.Get(scope)
		fmt.Println(t.Name, ok)
	})
	r.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/ws", nil))
	// Output: acme true
}

// chatMessage is declared once so every connection shares it: one JSON encoding per group send.
var chatMessage = ginws.RelayJSON(func(ev layer.Message) (any, error) {
	return map[string]any{"message": ev["message"], "user": ev["user"]}, nil
})

type Chat struct{ ginws.WebsocketConsumer }

func (c *Chat) Events() ginws.Events { return ginws.Events{"chat.message": chatMessage} }

func ExampleRelayJSON() {
	ws := ginws.New(ginws.Config{})
	r := gin.New()
	r.GET("/ws/chat", ws.Mount(func() ginws.Consumer { return new(Chat) }))
	fmt.Println("mounted")
	// Output: mounted
}

// Graceful shutdown: http.Server.Shutdown neither closes nor waits for WebSockets.
func ExampleServer_Shutdown() {
	ws := ginws.New(ginws.Config{})
	r := gin.New()
	r.GET("/ws", ws.Mount(func() ginws.Consumer { return new(Upper) }))
	srv := &http.Server{Addr: "127.0.0.1:0", Handler: r}
	srv.RegisterOnShutdown(ws.OnShutdown) // 1001 to every socket as soon as Shutdown starts

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = srv.Shutdown(ctx)
	fmt.Println(ws.Shutdown(ctx)) // waits for every Disconnect handler
	// Output: <nil>
}
