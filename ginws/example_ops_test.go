package ginws_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/gin-gonic/gin"
	"github.com/gorilla/websocket"

	"ginws.dev/ginws"
)

// A logout view closes the user's sockets — on every process sharing the layer — through the
// group Config.Groups made every socket join.
func ExampleServer_CloseGroup() {
	ws := ginws.New(ginws.Config{
		Logger: slog.New(slog.DiscardHandler),
		Groups: func(s *ginws.Scope) []string { return []string{"user." + s.QueryValue("user")} },
	})
	r := gin.New()
	r.GET("/ws", ws.Mount(func() ginws.Consumer { return new(Upper) }))
	r.POST("/logout", func(c *gin.Context) {
		_ = ws.CloseGroup(c, "user."+c.Query("user"), 4001, "signed out")
	})
	srv := httptest.NewServer(r)
	defer srv.Close()
	defer ws.Shutdown(context.Background())

	conn, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(srv.URL, "http")+"/ws?user=ada", nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer conn.Close()
	resp, err := http.Post(srv.URL+"/logout?user=ada", "", nil)
	if err == nil {
		resp.Body.Close()
	}
	_, _, err = conn.ReadMessage()
	var ce *websocket.CloseError
	if errors.As(err, &ce) {
		fmt.Println(ce.Code, ce.Text)
	}
	// Output: 4001 signed out
}

// One line per limit: a client that sends more than its budget is closed with 1008.
func ExampleLimits() {
	ws := ginws.New(ginws.Config{
		Logger: slog.New(slog.DiscardHandler),
		Limits: ginws.Limits{Messages: ginws.Rate{PerSecond: 1, Burst: 2}},
	})
	r := gin.New()
	r.GET("/ws", ws.Mount(func() ginws.Consumer { return new(Upper) }))
	srv := httptest.NewServer(r)
	defer srv.Close()
	defer ws.Shutdown(context.Background())

	conn, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(srv.URL, "http")+"/ws", nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer conn.Close()
	for _, m := range []string{"one", "two", "three"} {
		_ = conn.WriteMessage(websocket.TextMessage, []byte(m))
	}
	for {
		_, reply, err := conn.ReadMessage()
		var ce *websocket.CloseError
		if errors.As(err, &ce) {
			fmt.Println(ce.Code, ce.Text)
			return
		}
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Println(string(reply))
	}
	// Output:
	// ONE
	// TWO
	// 1008 message rate exceeded
}
