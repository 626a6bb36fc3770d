package main

import (
	"context"
	"unicode/utf8"

	"ginws.dev/ginws"
	"ginws.dev/ginws/layer"
	"ginws.dev/middleware"
)

// chatIn is what the page sends.
type chatIn struct {
	Message string `json:"message"`
}

// ChatConsumer is the ChatConsumer of Django Channels' tutorial: join the room's group on connect,
// group_send what the client types, relay chat.message events to the client.
type ChatConsumer struct {
	ginws.JSONConsumer[chatIn]
	user     string
	group    string
	compress bool // accept permessage-deflate (-compress)
}

// Connect runs after RequireUser: the session has a user.
func (c *ChatConsumer) Connect(ctx context.Context) error {
	user, ok := middleware.UserFrom[string](c.Scope())
	if !ok {
		return nil // anonymous: 403
	}
	room := c.Scope().Param("room")
	if !validRoom(room) {
		return ginws.Refuse(404, "bad room name")
	}
	c.user, c.group = user, "chat_"+room
	if err := c.GroupAdd(ctx, c.group); err != nil { // left automatically on disconnect
		return err
	}
	if c.compress {
		return c.Accept(ginws.WithCompression(ginws.Compression{}))
	}
	return c.Accept()
}

// ReceiveJSON sends what the client typed to everyone in the room, the sender included.
func (c *ChatConsumer) ReceiveJSON(ctx context.Context, in chatIn) error {
	if in.Message == "" || utf8.RuneCountInString(in.Message) > 2000 {
		return c.SendJSON(map[string]string{"error": "message: 1 to 2000 characters"})
	}
	err := c.GroupSend(ctx, c.group, layer.Message{"type": "chat.message", "message": in.Message, "user": c.user})
	if err != nil {
		// The layer could not take it (Redis down or recovering: redislayer.ErrDegraded). The
		// message is not sent; say so rather than closing the socket, and let the user retry.
		c.Logger().Warn("chat: message not sent", "error", err)
		return c.SendJSON(map[string]string{"error": "message not sent, try again"})
	}
	return nil
}

// Events routes layer events to handlers, as Channels routes "chat.message" to chat_message.
func (c *ChatConsumer) Events() ginws.Events {
	return ginws.Events{"chat.message": chatMessage}
}

// chatMessage writes a room message to the client. RelayJSON encodes it once for every member
// of the room on this process.
var chatMessage = ginws.RelayJSON(func(ev layer.Message) (any, error) {
	out := map[string]any{"message": ev["message"]}
	if u, ok := ev.Str("user"); ok {
		out["user"] = u
	}
	return out, nil
})
