// Command broadcast shows broadcast and point-to-point messaging on Gin: every connection joins the
// "broadcast" group and a group of its own user ("user.<name>"), and tells its client its channel
// name. Messages go to everyone, to one user (all of their tabs), or to one connection by
// channel name — from a client, or from ordinary HTTP endpoints:
//
//	POST /broadcast          message=...   → everyone
//	POST /notify/:user       message=...   → every connection of one user
//	POST /send/:channel      message=...   → exactly one connection
//	POST /thumbnails/:user   id=42         → the "thumbnails-generate" worker (examples/worker),
//	                                         which tells every connection of the user when it is done
//
//	go run ./examples/broadcast -addr 127.0.0.1:8002
//	go run ./examples/wsclient 'ws://127.0.0.1:8002/ws/notify?user=ada'     # in a second terminal
//	curl -d message=hi http://127.0.0.1:8002/notify/ada                      # in a third
//
// The client prints its welcome (with its channel name) and then {"type": "message", "from":
// "server", "to": "user:ada", "message": "hi"}; lines typed into it, such as
// {"to": "all", "message": "hello"}, are sent as they are.
//
// The thumbnails route hands work to a background worker, as a Django view hands it to `manage.py
// runworker`: it sends {"type": "generate", "id": 42, "notify": "user.ada"} to the named channel
// "thumbnails-generate", and answers 202 at once. The worker runs in its own process on the same
// Redis, and when it is done it group-sends {"type": "thumbnail.done", "id": 42} to the group named
// in "notify" — ada's connections, which show it to their clients:
//
//	go run ./examples/broadcast -addr 127.0.0.1:8002 -layer redis://127.0.0.1:6379/0
//	go run ./examples/worker -layer redis://127.0.0.1:6379/0 -channel thumbnails-generate
//	curl -d id=42 http://127.0.0.1:8002/thumbnails/ada       # the client of ada gets thumbnail.done
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
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"

	"ginws.dev/examples/internal/layerflag"
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

// Events: "send.message" and "thumbnail.done" (from the worker) are written to the client, encoded
// once for all local recipients.
func (c *NotifyConsumer) Events() ginws.Events {
	return ginws.Events{"send.message": sendMessage, "thumbnail.done": thumbnailDone}
}

var sendMessage = ginws.RelayJSON(func(ev layer.Message) (any, error) {
	return gin.H{"type": "message", "from": ev["from"], "to": ev["to"], "message": ev["message"]}, nil
})

var thumbnailDone = ginws.RelayJSON(func(ev layer.Message) (any, error) {
	return gin.H{"type": "thumbnail.done", "id": ev["id"]}, nil
})

// ThumbnailsChannel is the named channel the thumbnail worker (examples/worker) serves.
const ThumbnailsChannel = "thumbnails-generate"

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

// NewApp returns the routes, on lay (nil: an in-memory layer).
func NewApp(log *slog.Logger, lay layer.Layer) (*gin.Engine, *ginws.Server) {
	ws := ginws.New(ginws.Config{Logger: log, Layer: lay})
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
	r.POST("/thumbnails/:user", func(c *gin.Context) {
		user := c.Param("user")
		id, err := strconv.ParseInt(c.PostForm("id"), 10, 64)
		switch {
		case !validUser(user):
			c.String(http.StatusBadRequest, "bad user name")
			return
		case err != nil:
			c.String(http.StatusBadRequest, "id: want an integer")
			return
		}
		// Channels: async_to_sync(channel_layer.send)("thumbnails-generate", {...})
		err = ws.Layer().Send(c, ThumbnailsChannel, layer.Message{"type": "generate", "id": id, "notify": userGroup(user)})
		switch {
		case errors.Is(err, layer.ErrChannelFull):
			c.String(http.StatusServiceUnavailable, "the thumbnail workers are behind; try later")
		case err != nil:
			log.Error("sending to the thumbnail worker", "error", err)
			c.Status(http.StatusInternalServerError)
		default:
			c.Status(http.StatusAccepted) // the worker tells the user's sockets when it is done
		}
	})
	return r, ws
}

func main() {
	addr := flag.String("addr", "127.0.0.1:8002", "listen on `host:port`")
	layerFlag := flag.String("layer", "memory", layerflag.Usage+"; the thumbnail worker needs Redis")
	flag.Parse()
	log := serve.Logger()
	lay, closeLayer, err := layerflag.Parse(*layerFlag, log, nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, "broadcast:", err)
		os.Exit(2)
	}
	r, ws := NewApp(log, lay)
	err = serve.Run(*addr, r, ws, log)
	_ = closeLayer()
	if err != nil {
		fmt.Fprintln(os.Stderr, "broadcast:", err)
		os.Exit(1)
	}
}
