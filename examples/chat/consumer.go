package main

import (
	"context"
	"time"
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

// History is what the layer keeps of every room, so that a page that lost its socket (a network
// blip, a server restart) gets what it missed when it reconnects with ?since=ID: the last 1000
// messages, each for 15 minutes.
var History = layer.HistoryRule{Pattern: "chat_*", Size: 1000, Age: 15 * time.Minute}

// Connect runs after RequireUser: the session has a user. With ?since=ID (the "id" of the last
// message the page showed) the room's messages after it are sent first, then live ones; when the
// history no longer reaches back to ID the first frame is {"event": "history-gap"}.
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
	since, err := layer.ParsePosition(c.Scope().Query().Get("since"))
	gap := err != nil                                // a malformed id resumes nothing: the page must reload
	rec, err := c.GroupAddSince(ctx, c.group, since) // left automatically on disconnect
	if err != nil {
		return err
	}
	var opts []ginws.AcceptOption
	if c.compress {
		opts = append(opts, ginws.WithCompression(ginws.Compression{}))
	}
	if err := c.Accept(opts...); err != nil {
		return err
	}
	if gap || rec.Gap {
		return c.SendJSON(map[string]string{"event": "history-gap"})
	}
	return nil
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

// PresenceChat is the chat that also shows who is here (the default; -presence=false serves
// ChatConsumer alone).
type PresenceChat struct{ ChatConsumer }

// Presence makes the room show who is here: the connection is tracked in the room's group as its
// user once Connect has accepted it, and untracked when it ends.
func (c *PresenceChat) Presence() ([]string, layer.PresenceInfo) {
	return []string{c.group}, layer.PresenceInfo{User: c.user}
}

// Events adds the presence events to the chat's.
func (c *PresenceChat) Events() ginws.Events {
	ev := c.ChatConsumer.Events()
	ev["presence.state"] = c.members
	ev["presence.join"] = c.joinLeave("join")
	ev["presence.leave"] = c.joinLeave("leave")
	return ev
}

// members tells a new socket who is here: {"event": "members", "users": [sorted names]}, itself
// included.
func (c *PresenceChat) members(ctx context.Context, ev layer.Message) error {
	entries, _ := ev["members"].([]layer.PresenceEntry)
	users := make([]string, 0, len(entries))
	for _, e := range entries {
		users = append(users, e.User) // sorted by the layer, one per user
	}
	return c.SendJSON(map[string]any{"event": "members", "users": users})
}

// joinLeave relays a user's arrival (first tab) or departure (last tab, or its server died):
// {"event": "join", "user": "carol"}. A socket is not told of its own user's arrival: the members
// list it got says it.
func (c *PresenceChat) joinLeave(event string) ginws.EventHandler {
	return func(ctx context.Context, ev layer.Message) error {
		user, _ := ev.Str("user")
		if user == "" || user == c.user {
			return nil
		}
		return c.SendJSON(map[string]any{"event": event, "user": user})
	}
}

// chatMessage writes a room message to the client, with its position in the room's history as
// "id" (absent for a message without one, e.g. sent by a Django process). RelayJSON encodes it
// once for every member of the room on this process.
var chatMessage = ginws.RelayJSON(func(ev layer.Message, pos layer.Position) (any, error) {
	out := map[string]any{"message": ev["message"]}
	if u, ok := ev.Str("user"); ok {
		out["user"] = u
	}
	if !pos.IsZero() {
		out["id"] = pos.String()
	}
	return out, nil
})

// ChatStream is GET /events/chat/ROOM/: the room's messages as server-sent events, each the same
// JSON as the socket's frames, with the message's id as the event id. A browser's EventSource
// resumes by itself after a drop (it sends Last-Event-ID); {"event": "history-gap"} comes first when
// the history cannot cover it.
type ChatStream struct{}

// Connect runs after RequireUser, like the socket's.
func (ChatStream) Connect(ctx context.Context, s *ginws.Stream) error {
	if _, ok := middleware.UserFrom[string](s.Scope()); !ok {
		return ginws.Refuse(403, "anonymous")
	}
	room := s.Scope().Param("room")
	if !validRoom(room) {
		return ginws.Refuse(404, "bad room name")
	}
	since, err := s.LastEventID()
	gap := err != nil
	rec, err := s.GroupAddSince(ctx, "chat_"+room, since)
	if err != nil {
		return err
	}
	if gap || rec.Gap {
		return s.SendJSON(map[string]string{"event": "history-gap"})
	}
	return nil
}

// Events relays room messages as the socket does.
func (ChatStream) Events() ginws.Events { return ginws.Events{"chat.message": chatMessage} }
