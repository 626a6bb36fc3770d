// Command broadcast shows broadcast and point-to-point messaging on Gin: every connection joins the
// "broadcast" group and a group of its own user ("user.<name>"), and tells its client its channel
// name. Messages go to everyone, to one user (all of their tabs), or to one connection by
// channel name — from a client, or from ordinary HTTP endpoints:
//
//	POST /broadcast          message=...   → everyone
//	POST /notify/:user       message=...   → every connection of one user
//	POST /send/:channel      message=...   → exactly one connection
//
//	go run ./examples/broadcast -addr 127.0.0.1:8002
//	go run ./examples/wsclient 'ws://127.0.0.1:8002/ws/notify?user=ada'     # in a second terminal
//	curl -d message=hi http://127.0.0.1:8002/notify/ada                      # in a third
//
// The client prints its welcome (with its channel name) and then {"type": "message", "from":
// "server", "to": "user:ada", "message": "hi"}; lines typed into it, such as
// {"to": "all", "message": "hello"}, are sent as they are.
//
// The user comes from a query parameter to keep the demo short; a real app takes it from its
// session or a token (see examples/chat and examples/jwt).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strings"

	"github.com/gin-gonic/gin"

	"ginws.dev/examples/internal/serve"
	"ginws.dev/ginws"
	"ginws.dev/ginws/layer"
	"ginws.dev/middleware"
)

const everyone = "broadcast"

func userGroup(user string) string { return "user." + user }

// validUser keeps user names usable in group names.
func validUser(u string) bool {
	return u != "" && len(u) <= 64 && layer.ValidateGroupName(userGroup(u)) == nil
}

// outgoing is what clients send: {"to": "all" | "user:NAME" | "channel:NAME", "message": "..."}.
type outgoing struct {
	To      string `json:"to"`
	Message string `json:"message"`
}

// NotifyConsumer is one connection of one user.
type NotifyConsumer struct {
	ginws.JSONConsumer[outgoing]
	user string
}

// Groups are joined before Connect and left when the connection ends.
func (c *NotifyConsumer) Groups() []string {
	u, _ := middleware.UserFrom[string](c.Scope())
	return []string{everyone, userGroup(u)}
}

// Connect greets the client with its channel name, the address for point-to-point sends.
func (c *NotifyConsumer) Connect(ctx context.Context) error {
	c.user, _ = middleware.UserFrom[string](c.Scope())
	if err := c.Accept(); err != nil {
		return err
	}
	return c.SendJSON(gin.H{"type": "welcome", "user": c.user, "channel": c.ChannelName()})
}

// ReceiveJSON routes a client's message.
func (c *NotifyConsumer) ReceiveJSON(ctx context.Context, out outgoing) error {
	err := send(ctx, c.Layer(), out.To, c.user, out.Message)
	if err != nil {
		return c.SendJSON(gin.H{"type": "error", "error": err.Error()})
	}
	return nil
}

// Events: "send.message" is written to the client, encoded once for all local recipients.
func (c *NotifyConsumer) Events() ginws.Events {
	return ginws.Events{"send.message": sendMessage}
}

var sendMessage = ginws.RelayJSON(func(ev layer.Message) (any, error) {
	return gin.H{"type": "message", "from": ev["from"], "to": ev["to"], "message": ev["message"]}, nil
})

var errBadTarget = errors.New(`"to" must be "all", "user:NAME" or "channel:NAME"`)

// send delivers one message, from a consumer or from an HTTP handler: the same layer calls work
// anywhere in the process (Channels' get_channel_layer()).
func send(ctx context.Context, l layer.Layer, to, from, text string) error {
	if text == "" {
		return errors.New("empty message")
	}
	ev := layer.Message{"type": "send.message", "from": from, "to": to, "message": text}
	switch {
	case to == "all":
		return l.GroupSend(ctx, everyone, ev)
	case strings.HasPrefix(to, "user:"):
		u := strings.TrimPrefix(to, "user:")
		if !validUser(u) {
			return fmt.Errorf("bad user name %q", u)
		}
		return l.GroupSend(ctx, userGroup(u), ev)
	case strings.HasPrefix(to, "channel:"):
		return l.Send(ctx, strings.TrimPrefix(to, "channel:"), ev)
	}
	return errBadTarget
}

// NewApp returns the routes.
func NewApp(log *slog.Logger) (*gin.Engine, *ginws.Server) {
	ws := ginws.New(ginws.Config{Logger: log})
	r := gin.New()
	r.Use(gin.Recovery())
	r.GET("/ws/notify",
		middleware.LoadUser(func(c *gin.Context) (string, bool, error) {
			u := c.Query("user")
			return u, validUser(u), nil
		}, middleware.WithLogger(log)),
		middleware.RequireUser(),
		ws.Mount(func() ginws.Consumer { return new(NotifyConsumer) }))

	httpSend := func(target func(c *gin.Context) string) gin.HandlerFunc {
		return func(c *gin.Context) {
			err := send(c, ws.Layer(), target(c), "server", c.PostForm("message"))
			switch {
			case errors.Is(err, layer.ErrChannelFull):
				c.String(http.StatusTooManyRequests, "that connection is not keeping up; try later")
			case err != nil:
				c.String(http.StatusBadRequest, err.Error())
			default:
				c.Status(http.StatusAccepted)
			}
		}
	}
	r.POST("/broadcast", httpSend(func(*gin.Context) string { return "all" }))
	r.POST("/notify/:user", httpSend(func(c *gin.Context) string { return "user:" + c.Param("user") }))
	r.POST("/send/:channel", httpSend(func(c *gin.Context) string { return "channel:" + c.Param("channel") }))
	return r, ws
}

func main() {
	addr := flag.String("addr", "127.0.0.1:8002", "listen on `host:port`")
	flag.Parse()
	log := serve.Logger()
	r, ws := NewApp(log)
	if err := serve.Run(*addr, r, ws, log); err != nil {
		fmt.Fprintln(os.Stderr, "broadcast:", err)
		os.Exit(1)
	}
}
