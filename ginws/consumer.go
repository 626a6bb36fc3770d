package ginws

import (
	"context"
	"encoding/json"
	"errors"

	"ginws.dev/ginws/layer"
)

// Consumer is the code behind one WebSocket connection, as in Django Channels: Mount calls a
// factory for every handshake, so each connection has its own Consumer value and may keep state in
// it without locks.
//
// A Consumer is written by embedding WebsocketConsumer (text and binary frames) or JSONConsumer[T]
// (JSON text), which supply default methods and the connection's API (Accept, SendText, SendJSON,
// GroupSend, Close, Scope, ChannelName...), and overriding the methods it needs:
//
//	type Echo struct{ ginws.WebsocketConsumer }
//
//	func (e *Echo) Receive(ctx context.Context, f ginws.ClientMessage) error { return e.SendText(f.Text()) }
//
// # Concurrency
//
// The runtime never runs two handlers of one Consumer at the same time: Connect, Receive (or
// ReceiveJSON), the event handlers and Disconnect are called one after another, client frames and
// layer events in the order they arrived. Connect runs first, on the handshake's goroutine, before
// the HTTP response; Disconnect runs last, exactly once for every accepted connection.
//
// Optional methods a Consumer may add:
//   - Groups() []string — groups joined before Connect and left when the connection ends
//     (Channels' groups attribute); see GroupMember.
//   - Events() Events — handlers for layer events by type (Channels' chat_message methods); see
//     EventRouter.
//   - Presence() ([]string, layer.PresenceInfo) — groups the connection is tracked in, as which
//     user, after Connect accepts (join and leave events, who is here); see PresenceMember.
type Consumer interface {
	// Connect decides whether to accept the handshake. Call Accept to accept; return without
	// accepting (or call Close) to refuse with HTTP 403; return Refuse(status, reason) for another
	// status. Any other error refuses with HTTP 500 and is logged.
	Connect(ctx context.Context) error
	// Receive handles a frame from the client. An error closes the connection with 1011 and is
	// logged; a *CloseError closes it with its code and is not.
	Receive(ctx context.Context, f ClientMessage) error
	// Disconnect runs once after an accepted connection has ended, with the close code (1006 when
	// the peer vanished without a close frame). Its context is fresh, bounded by
	// Config.DisconnectTimeout.
	Disconnect(ctx context.Context, code int)

	bind(c *Conn, self Consumer)
}

// GroupMember is implemented by consumers that declare their groups.
type GroupMember interface {
	Groups() []string
}

// EventRouter is implemented by consumers that handle layer events.
type EventRouter interface {
	Events() Events
}

// EventHandler handles one layer event. The Message is shared with the other recipients of the same
// send: read it, do not modify it.
type EventHandler func(ctx context.Context, ev layer.Message) error

// Events maps event types to handlers. As in Channels, a '.' and a '_' in a type are the same
// character, so "chat.message" and "chat_message" name one handler; a type that starts with '_' or
// '.' is refused.
type Events map[string]EventHandler

// ClientMessage is one WebSocket message from the client: a whole message, all its frames.
type ClientMessage struct {
	Binary bool   // false: a text frame (valid UTF-8, checked by the runtime)
	Data   []byte // the payload; the handler owns it
}

// Text returns the payload as a string.
func (f ClientMessage) Text() string { return string(f.Data) }

// WebsocketConsumer is the base of text/binary consumers (Channels' WebsocketConsumer). Embed it:
// its Connect accepts, its Receive and Disconnect do nothing, and the embedded *Conn gives the
// connection's API. The runtime sets Conn before calling any method.
type WebsocketConsumer struct {
	*Conn
	self Consumer
}

func (w *WebsocketConsumer) bind(c *Conn, self Consumer) { w.Conn, w.self = c, self }

// Connect accepts the connection.
func (w *WebsocketConsumer) Connect(ctx context.Context) error { return w.Accept() }

// Receive ignores the frame.
func (w *WebsocketConsumer) Receive(ctx context.Context, f ClientMessage) error { return nil }

// Disconnect does nothing.
func (w *WebsocketConsumer) Disconnect(ctx context.Context, code int) {}

// JSONReceiver is the method a JSONConsumer[T] calls for every decoded frame.
type JSONReceiver[T any] interface {
	ReceiveJSON(ctx context.Context, content T) error
}

// JSONErrorHandler lets a JSON consumer decide what happens to a frame it cannot decode (a binary
// frame, or text that is not JSON of type T). Returning nil keeps the connection open — for example
// after SendJSON-ing an error to the client; returning an error closes it. Without this method the
// connection is closed with 1003 (binary frame) or 1007 (malformed JSON) and a log line.
type JSONErrorHandler interface {
	JSONError(ctx context.Context, f ClientMessage, err error) error
}

// JSONConsumer is the base of JSON consumers (Channels' JsonWebsocketConsumer), decoding every text
// frame into a T and calling ReceiveJSON. T is usually a struct with json tags, or map[string]any:
//
//	type Chat struct{ ginws.JSONConsumer[ChatIn] }
//
//	func (c *Chat) ReceiveJSON(ctx context.Context, in ChatIn) error { ... }
type JSONConsumer[T any] struct {
	WebsocketConsumer
}

// Errors a JSONConsumer reports for frames it cannot decode.
var (
	ErrBinaryFrame = errors.New("ginws: binary frame sent to a JSON endpoint")
	ErrBadJSON     = errors.New("ginws: frame is not valid JSON for this endpoint")
)

// Receive decodes the frame and calls ReceiveJSON.
func (j *JSONConsumer[T]) Receive(ctx context.Context, f ClientMessage) error {
	var content T
	var err error
	if f.Binary {
		err = ErrBinaryFrame
	} else if jerr := json.Unmarshal(f.Data, &content); jerr != nil {
		err = errors.Join(ErrBadJSON, jerr)
	}
	if err != nil {
		if h, ok := j.self.(JSONErrorHandler); ok {
			return h.JSONError(ctx, f, err)
		}
		code := CloseInvalidPayload
		if f.Binary {
			code = CloseUnsupportedData
		}
		j.Logger().Info("ginws: closing connection after an undecodable frame", "error", err, "close_code", code)
		return &CloseError{Code: code, Reason: reasonFor(err)}
	}
	if r, ok := j.self.(JSONReceiver[T]); ok {
		return r.ReceiveJSON(ctx, content)
	}
	return nil
}

// ReceiveJSON ignores the content.
func (j *JSONConsumer[T]) ReceiveJSON(ctx context.Context, content T) error { return nil }

func reasonFor(err error) string {
	if errors.Is(err, ErrBinaryFrame) {
		return "binary frames are not accepted"
	}
	return "invalid JSON"
}

type connCtxKey struct{}

// connFromContext returns the connection whose handler received ctx (or whose Context() ctx
// derives from), or nil.
func connFromContext(ctx context.Context) *Conn {
	c, _ := ctx.Value(connCtxKey{}).(*Conn)
	return c
}

// handlerName normalizes an event type the way Channels maps it to a method name; the rules are
// the channel layer's (layer.HandlerName), shared with layer.Worker.
func handlerName(typ string) (string, error) { return layer.HandlerName(typ) }

// checkEventType applies Channels' rules to an event type, at registration and at dispatch.
func checkEventType(typ string) error { return layer.ValidateEventType(typ) }

func quote(s string) string {
	if len(s) > 64 {
		s = s[:64] + "..."
	}
	return `"` + s + `"`
}
