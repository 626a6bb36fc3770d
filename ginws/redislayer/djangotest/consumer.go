package djangotest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"ginws.dev/ginws"
	"ginws.dev/ginws/layer"
)

// EventType is the type of the layer events the Go interop consumer shows its client. (The Django
// one shows events of every type; a ginws consumer handles the types it registers.)
const EventType = "interop.event"

// Consumer is the Go twin of the Django project's InteropConsumer, speaking the same protocol to
// a Client: on connect it joins the group named by the route parameter "group" and sends
// {"kind":"hello","channel":<its channel name>}; it shows every EventType event as
// {"kind":"event","event":<typed JSON>}; it runs the commands group_send, send, group_add and
// group_discard on the server's layer and answers each with {"kind":"ok"} or {"kind":"error"}.
//
//	r.GET("/ws/interop/:group/", ws.Mount(djangotest.NewConsumer))
type Consumer struct {
	ginws.WebsocketConsumer
}

var (
	_ ginws.Consumer    = (*Consumer)(nil)
	_ ginws.EventRouter = (*Consumer)(nil)
)

// NewConsumer returns a Consumer, as a factory for ginws.Server.Mount.
func NewConsumer() ginws.Consumer { return new(Consumer) }

// Connect joins the group and says hello.
func (c *Consumer) Connect(ctx context.Context) error {
	group := c.Scope().Param("group")
	if err := layer.ValidateGroupName(group); err != nil {
		return ginws.Refuse(404, err.Error())
	}
	if err := c.GroupAdd(ctx, group); err != nil { // left by the runtime on disconnect
		return err
	}
	if err := c.Accept(); err != nil {
		return err
	}
	return c.SendJSON(reply{Kind: "hello", Channel: c.ChannelName()})
}

// Events shows EventType events to the client.
func (c *Consumer) Events() ginws.Events {
	return ginws.Events{EventType: c.show}
}

func (c *Consumer) show(ctx context.Context, ev layer.Message) error {
	b, err := MarshalTyped(ev)
	if err != nil {
		return c.SendJSON(reply{Kind: "error", Error: "cannot show event: " + err.Error()})
	}
	return c.SendText(`{"kind":"event","event":` + string(b) + `}`)
}

// Receive runs a command. Bad commands are answered with an error; the connection stays open.
func (c *Consumer) Receive(ctx context.Context, f ginws.ClientMessage) error {
	var cmd command
	err := errors.New("binary frames are not commands")
	if !f.Binary {
		err = json.Unmarshal(f.Data, &cmd)
	}
	if err == nil {
		err = c.run(ctx, cmd)
	}
	if err != nil {
		return c.SendJSON(reply{Kind: "error", ID: cmd.ID, Error: err.Error()})
	}
	return c.SendJSON(reply{Kind: "ok", ID: cmd.ID})
}

func (c *Consumer) run(ctx context.Context, cmd command) error {
	switch cmd.Cmd {
	case "group_send", "send":
		msg, err := eventFromTyped(cmd.Event)
		if err != nil {
			return err
		}
		if cmd.Cmd == "group_send" {
			return c.Layer().GroupSend(ctx, cmd.Group, msg)
		}
		return c.Layer().Send(ctx, cmd.Channel, msg)
	case "group_add":
		return c.GroupAdd(ctx, cmd.Group)
	case "group_discard":
		return c.GroupDiscard(ctx, cmd.Group)
	}
	return fmt.Errorf("unknown cmd %q", cmd.Cmd)
}

func eventFromTyped(raw json.RawMessage) (layer.Message, error) {
	if len(raw) == 0 {
		return nil, errors.New(`"event" is missing`)
	}
	v, err := UnmarshalTyped(raw)
	if err != nil {
		return nil, err
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, errors.New(`"event" must be an object`)
	}
	if _, ok := m["type"].(string); !ok {
		return nil, errors.New(`"event" must have a string "type"`)
	}
	return layer.Message(m), nil
}

// command is what a Client sends to an interop consumer.
type command struct {
	ID      int64           `json:"id,omitempty"`
	Cmd     string          `json:"cmd"`
	Group   string          `json:"group,omitempty"`
	Channel string          `json:"channel,omitempty"`
	Event   json.RawMessage `json:"event,omitempty"`
}

// reply is what an interop consumer sends to its Client.
type reply struct {
	Kind    string          `json:"kind"` // hello, event, ok, error
	ID      int64           `json:"id,omitempty"`
	Channel string          `json:"channel,omitempty"`
	Error   string          `json:"error,omitempty"`
	Event   json.RawMessage `json:"event,omitempty"`
}
