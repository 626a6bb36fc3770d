package djangotest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"ginws.dev/ginws/layer"
)

// Client drives an interop consumer — the Django one (/ws/interop/<group>/ on a Daphne) or the Go
// one (Consumer) — over a real WebSocket: it learns the consumer's channel name, has it call its
// channel layer, and reads the layer events it shows.
//
// A Client is meant for one test goroutine; its reader goroutine ends with Close.
type Client struct {
	// Channel is the consumer's channel name, from its hello.
	Channel string

	conn      *websocket.Conn
	frames    chan reply
	readErr   error // set before frames is closed
	readDone  chan struct{}
	closeOnce sync.Once
	nextID    int64
	events    []layer.Message // events that arrived while a command waited for its answer
}

// defaultWait bounds calls whose context has no deadline.
const defaultWait = 10 * time.Second

// Dial connects to an interop consumer at a ws:// URL and waits for its hello. header may be nil.
func Dial(ctx context.Context, wsURL string, header http.Header) (*Client, error) {
	ctx, cancel := withDefaultWait(ctx)
	defer cancel()
	d := websocket.Dialer{HandshakeTimeout: defaultWait}
	conn, resp, err := d.DialContext(ctx, wsURL, header)
	if err != nil {
		if resp != nil {
			return nil, fmt.Errorf("djangotest: dial %s: %w (HTTP %d)", wsURL, err, resp.StatusCode)
		}
		return nil, fmt.Errorf("djangotest: dial %s: %w", wsURL, err)
	}
	c := &Client{conn: conn, frames: make(chan reply, 64), readDone: make(chan struct{})}
	go c.read()
	r, err := c.next(ctx)
	if err == nil && (r.Kind != "hello" || r.Channel == "") {
		err = fmt.Errorf("djangotest: %s: first frame is %+v, want a hello with a channel name", wsURL, r)
	}
	if err != nil {
		c.Close()
		return nil, err
	}
	c.Channel = r.Channel
	return c, nil
}

func withDefaultWait(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, defaultWait)
}

func (c *Client) read() {
	defer close(c.readDone)
	defer close(c.frames)
	for {
		typ, data, err := c.conn.ReadMessage()
		if err != nil {
			c.readErr = err
			return
		}
		var r reply
		if typ != websocket.TextMessage {
			r = reply{Kind: "error", Error: "the consumer sent a binary frame"}
		} else if err := json.Unmarshal(data, &r); err != nil {
			r = reply{Kind: "error", Error: fmt.Sprintf("the consumer sent %q: %v", data, err)}
		}
		c.frames <- r
	}
}

func (c *Client) next(ctx context.Context) (reply, error) {
	select {
	case r, ok := <-c.frames:
		if !ok {
			return reply{}, fmt.Errorf("djangotest: connection to the consumer ended: %w", c.readErr)
		}
		return r, nil
	case <-ctx.Done():
		return reply{}, ctx.Err()
	}
}

// call sends a command and waits for its answer, keeping the events that arrive meanwhile.
func (c *Client) call(ctx context.Context, cmd command) error {
	ctx, cancel := withDefaultWait(ctx)
	defer cancel()
	c.nextID++
	cmd.ID = c.nextID
	b, err := json.Marshal(cmd)
	if err != nil {
		return err
	}
	if err := c.conn.WriteMessage(websocket.TextMessage, b); err != nil {
		return err
	}
	for {
		r, err := c.next(ctx)
		if err != nil {
			return fmt.Errorf("djangotest: %s: %w", cmd.Cmd, err)
		}
		switch {
		case r.Kind == "event":
			m, err := eventFromTyped(r.Event)
			if err != nil {
				return fmt.Errorf("djangotest: the consumer showed a bad event: %w", err)
			}
			c.events = append(c.events, m)
		case r.ID == cmd.ID && r.Kind == "ok":
			return nil
		case r.Kind == "error":
			return fmt.Errorf("djangotest: %s: the consumer answered: %s", cmd.Cmd, r.Error)
		}
	}
}

func (c *Client) eventCommand(ctx context.Context, cmd command, msg layer.Message) error {
	b, err := MarshalTyped(msg)
	if err != nil {
		return err
	}
	cmd.Event = b
	return c.call(ctx, cmd)
}

// GroupSend has the consumer call group_send(group, msg) on its layer, and returns once the call
// has returned.
func (c *Client) GroupSend(ctx context.Context, group string, msg layer.Message) error {
	return c.eventCommand(ctx, command{Cmd: "group_send", Group: group}, msg)
}

// Send has the consumer call send(channel, msg) on its layer.
func (c *Client) Send(ctx context.Context, channel string, msg layer.Message) error {
	return c.eventCommand(ctx, command{Cmd: "send", Channel: channel}, msg)
}

// GroupAdd has the consumer add its own channel to group.
func (c *Client) GroupAdd(ctx context.Context, group string) error {
	return c.call(ctx, command{Cmd: "group_add", Group: group})
}

// GroupDiscard has the consumer remove its own channel from group.
func (c *Client) GroupDiscard(ctx context.Context, group string) error {
	return c.call(ctx, command{Cmd: "group_discard", Group: group})
}

// Event returns the next layer event the consumer shows, in typed form (see UnmarshalTyped).
func (c *Client) Event(ctx context.Context) (layer.Message, error) {
	if len(c.events) > 0 {
		m := c.events[0]
		c.events = c.events[1:]
		return m, nil
	}
	ctx, cancel := withDefaultWait(ctx)
	defer cancel()
	for {
		r, err := c.next(ctx)
		if err != nil {
			return nil, fmt.Errorf("djangotest: waiting for an event: %w", err)
		}
		switch r.Kind {
		case "event":
			return eventFromTyped(r.Event)
		case "error":
			return nil, fmt.Errorf("djangotest: the consumer reported: %s", r.Error)
		}
	}
}

// ErrUnexpectedEvent is returned by NoEvent when an event arrived.
var ErrUnexpectedEvent = errors.New("djangotest: an event arrived")

// NoEvent waits for d and returns nil when no event arrived meanwhile.
func (c *Client) NoEvent(ctx context.Context, d time.Duration) error {
	if len(c.events) > 0 {
		return fmt.Errorf("%w: %v", ErrUnexpectedEvent, c.events[0])
	}
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	for {
		r, err := c.next(ctx)
		if errors.Is(err, context.DeadlineExceeded) {
			return nil
		}
		if err != nil {
			return err
		}
		if r.Kind == "event" {
			return fmt.Errorf("%w: %s", ErrUnexpectedEvent, r.Event)
		}
	}
}

// Close closes the connection (with a close frame) and waits for the reader to end.
func (c *Client) Close() error {
	var err error
	c.closeOnce.Do(func() {
		_ = c.conn.WriteControl(websocket.CloseMessage,
			websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
		select { // wait briefly for the server's close frame, then cut the connection
		case <-c.readDone:
		case <-time.After(2 * time.Second):
		}
		err = c.conn.Close()
		for range c.frames { // let the reader finish if it was blocked handing over a frame
		}
		<-c.readDone
	})
	return err
}
