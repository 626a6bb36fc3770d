// Command jsonconsumer is a Django Channels AsyncJsonWebsocketConsumer ported to Gin: a JSON
// consumer that joins the group named in its URL and answers {"type": "message", "content": ...}
// with a group event of type send_response, which every member turns into
// {"type": "response", "content": ...}.
//
//	go run ./examples/jsonconsumer -addr 127.0.0.1:8001
//
// Then open http://127.0.0.1:8001/, whose script does this (paste it into the browser console to
// try more):
//
//	const s = new WebSocket("ws://127.0.0.1:8001/ws/my_group/");
//	s.onmessage = e => console.log(JSON.parse(e.data));
//	s.onopen = () => s.send(JSON.stringify({type: "message", content: "Hello, server!"}));
//
// or, from a terminal, type {"type": "message", "content": "Hello"} into
//
//	go run ./examples/wsclient ws://127.0.0.1:8001/ws/my_group/
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"os"

	"github.com/gin-gonic/gin"

	"ginws.dev/examples/internal/serve"
	"ginws.dev/ginws"
	"ginws.dev/ginws/layer"
)

// content is what clients send: {"type": "message", "content": "..."}.
type content struct {
	Type    string `json:"type"`
	Content string `json:"content"`
}

// MyConsumer is the Channels consumer, method for method: group_add in connect, group_send in
// receive_json, and a send_response handler for the group event.
type MyConsumer struct {
	ginws.JSONConsumer[content]
	group string
}

// Connect joins the group named in the URL (Channels' group_add in connect) and accepts.
func (c *MyConsumer) Connect(ctx context.Context) error {
	c.group = c.Scope().Param("group_name")
	if err := layer.ValidateGroupName(c.group); err != nil {
		return ginws.Refuse(http.StatusNotFound, err.Error())
	}
	if err := c.GroupAdd(ctx, c.group); err != nil {
		return err
	}
	return c.Accept()
}

// ReceiveJSON handles {"type": "message"} by telling the whole group.
func (c *MyConsumer) ReceiveJSON(ctx context.Context, in content) error {
	switch in.Type {
	case "message":
		return c.GroupSend(ctx, c.group, layer.Message{
			"type":    "send_response",
			"content": "Message received: " + in.Content,
		})
	default:
		return c.SendJSON(map[string]string{"type": "error", "content": fmt.Sprintf("unknown message type %q", in.Type)})
	}
}

// Events maps the group event send_response to its handler, as Channels maps it to the method.
func (c *MyConsumer) Events() ginws.Events {
	return ginws.Events{"send_response": c.sendResponse}
}

func (c *MyConsumer) sendResponse(ctx context.Context, ev layer.Message) error {
	text, _ := ev.Str("content")
	return c.SendJSON(map[string]string{"type": "response", "content": text})
}

// NewApp returns the routes: the socket at /ws/:group_name/ and a page that uses it.
func NewApp(log *slog.Logger) (*gin.Engine, *ginws.Server) {
	ws := ginws.New(ginws.Config{Logger: log})
	r := gin.New()
	r.Use(gin.Recovery())
	mount := ws.Mount(func() ginws.Consumer { return new(MyConsumer) })
	r.GET("/ws/:group_name/", mount)
	r.GET("/ws/:group_name", mount)
	r.GET("/", func(c *gin.Context) { c.Data(http.StatusOK, "text/html; charset=utf-8", page) })
	return r, ws
}

var page = []byte(`<!DOCTYPE html>
<meta charset="utf-8"><title>ginws JSON consumer</title>
<p>Open the console: <code>const s = new WebSocket("ws://" + location.host + "/ws/my_group/")</code></p>
<pre id="log"></pre>
<script>
  const s = new WebSocket("ws://" + location.host + "/ws/my_group/");
  s.onmessage = e => { document.querySelector("#log").textContent += e.data + "\n"; };
  s.onopen = () => s.send(JSON.stringify({type: "message", content: "Hello, server!"}));
</script>`)

func main() {
	addr := flag.String("addr", "127.0.0.1:8001", "listen on `host:port`")
	flag.Parse()
	log := serve.Logger()
	r, ws := NewApp(log)
	if err := serve.Run(*addr, r, ws, log); err != nil {
		fmt.Fprintln(os.Stderr, "jsonconsumer:", err)
		os.Exit(1)
	}
}
