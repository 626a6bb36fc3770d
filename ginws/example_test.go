package ginws_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
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

// chatBuilds counts the calls of chatMessage's build function.
var chatBuilds atomic.Int64

// chatMessage is declared once, at package level, so that every connection shares it.
var chatMessage = ginws.RelayJSON(func(ev layer.Message) (any, error) {
	chatBuilds.Add(1)
	return map[string]any{"message": ev["message"], "user": ev["user"]}, nil
})

// Chat joins the lobby and relays its chat.message events to its client.
type Chat struct{ ginws.WebsocketConsumer }

func (c *Chat) Groups() []string { return []string{"chat_lobby"} }

func (c *Chat) Events() ginws.Events { return ginws.Events{"chat.message": chatMessage} }

// One group send reaches three connections: the build function runs once, the JSON is encoded
// once, and the three clients receive the same frame.
func ExampleRelayJSON() {
	ws := ginws.New(ginws.Config{})
	r := gin.New()
	r.GET("/ws/chat", ws.Mount(func() ginws.Consumer { return new(Chat) }))
	srv := httptest.NewServer(r)
	defer srv.Close()
	defer ws.Shutdown(context.Background())

	var clients []*websocket.Conn
	for range 3 {
		c, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(srv.URL, "http")+"/ws/chat", nil)
		if err != nil {
			fmt.Println(err)
			return
		}
		defer c.Close()
		clients = append(clients, c) // a member of chat_lobby once the handshake is answered
	}

	ctx := context.Background()
	before := chatBuilds.Load()
	_ = ws.Layer().GroupSend(ctx, "chat_lobby", layer.Message{"type": "chat.message", "message": "hi", "user": "ada"})
	for i, c := range clients {
		_, frame, _ := c.ReadMessage()
		fmt.Printf("client %d: %s\n", i+1, frame)
	}
	fmt.Println("build calls:", chatBuilds.Load()-before)
	// Output:
	// client 1: {"message":"hi","user":"ada"}
	// client 2: {"message":"hi","user":"ada"}
	// client 3: {"message":"hi","user":"ada"}
	// build calls: 1
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

// Lobby says who is connected: it is tracked in "lobby" as the user named in the query (an app
// would take it from its session), and shows who is here, then who comes and goes.
type Lobby struct{ ginws.WebsocketConsumer }

func (l *Lobby) Presence() ([]string, layer.PresenceInfo) {
	return []string{"lobby"}, layer.PresenceInfo{User: l.Scope().Query().Get("user")}
}

func (l *Lobby) Events() ginws.Events {
	return ginws.Events{
		"presence.state": func(ctx context.Context, ev layer.Message) error {
			var users []string
			for _, e := range ev["members"].([]layer.PresenceEntry) {
				users = append(users, e.User)
			}
			return l.SendText("here: " + strings.Join(users, ", "))
		},
		"presence.join": func(ctx context.Context, ev layer.Message) error {
			user, _ := ev.Str("user")
			return l.SendText("joined: " + user)
		},
	}
}

// Presence: a socket learns who is here, then who joins; an HTTP view lists the group.
func ExamplePresenceMember() {
	ws := ginws.New(ginws.Config{Logger: slog.New(slog.DiscardHandler)})
	r := gin.New()
	r.GET("/ws/lobby", ws.Mount(func() ginws.Consumer { return new(Lobby) }))
	r.GET("/lobby/members", func(c *gin.Context) {
		list, err := ws.Layer().(layer.Presence).PresenceList(c, "lobby")
		if err != nil {
			c.AbortWithStatus(http.StatusServiceUnavailable)
			return
		}
		c.JSON(http.StatusOK, gin.H{"members": list})
	})
	srv := httptest.NewServer(r)
	defer srv.Close()
	defer ws.Shutdown(context.Background())

	dial := func(user string) *websocket.Conn {
		conn, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(srv.URL, "http")+"/ws/lobby?user="+user, nil)
		if err != nil {
			panic(err)
		}
		return conn
	}
	read := func(conn *websocket.Conn) string { _, b, _ := conn.ReadMessage(); return string(b) }
	ada := dial("ada")
	defer ada.Close()
	fmt.Println(read(ada)) // ada's own join
	fmt.Println(read(ada))
	bob := dial("bob")
	defer bob.Close()
	fmt.Println(read(ada))
	resp, err := http.Get(srv.URL + "/lobby/members")
	if err != nil {
		panic(err)
	}
	defer resp.Body.Close()
	body := new(strings.Builder)
	_, _ = io.Copy(body, resp.Body)
	fmt.Println(body)
	// Output:
	// joined: ada
	// here: ada
	// joined: bob
	// {"members":[{"user":"ada","connections":1},{"user":"bob","connections":1}]}
}

// Feed is a consumer whose endpoint compresses: it accepts with WithCompression, so a client that
// offers permessage-deflate (every browser does) gets its messages compressed.
type Feed struct {
	ginws.WebsocketConsumer
}

func (f *Feed) Connect(ctx context.Context) error {
	return f.Accept(ginws.WithCompression(ginws.Compression{})) // level 1; messages under 256 bytes go plain
}

func (f *Feed) Receive(ctx context.Context, m ginws.ClientMessage) error {
	return f.SendText(strings.Repeat(m.Text(), 100))
}

// Compression is turned on per endpoint, at Accept.
func ExampleWithCompression() {
	ws := ginws.New(ginws.Config{})
	r := gin.New()
	r.GET("/ws/feed", ws.Mount(func() ginws.Consumer { return new(Feed) }))
	srv := httptest.NewServer(r)
	defer srv.Close()
	defer ws.Shutdown(context.Background())

	d := websocket.Dialer{EnableCompression: true}
	conn, resp, err := d.Dial("ws"+strings.TrimPrefix(srv.URL, "http")+"/ws/feed", nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer conn.Close()
	fmt.Println(resp.Header.Get("Sec-WebSocket-Extensions"))
	_ = conn.WriteMessage(websocket.TextMessage, []byte(`{"n":1}`))
	_, reply, _ := conn.ReadMessage()
	fmt.Println(len(reply))
	// Output:
	// permessage-deflate; server_no_context_takeover; client_no_context_takeover
	// 700
}
