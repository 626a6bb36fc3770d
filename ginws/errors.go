package ginws

import (
	"errors"
	"fmt"
	"net/http"
)

// Sentinel errors. Compare with errors.Is: the values returned by ginws may wrap them with more detail.
var (
	// ErrChannelFull is returned by Layer.Send when the channel already holds its capacity of messages,
	// as Channels raises ChannelFull. GroupSend never returns it: a full member misses the message
	// and the layer counts the drop.
	ErrChannelFull = errors.New("ginws: channel is full")

	// ErrInvalidName is wrapped by every *NameError, so errors.Is(err, ErrInvalidName) tells a bad
	// channel or group name from other failures.
	ErrInvalidName = errors.New("ginws: invalid name")

	// ErrClosed is returned by sends and layer calls on a connection that is closing or closed.
	ErrClosed = errors.New("ginws: connection closed")

	// ErrNotAccepted is returned by sends made before Accept.
	ErrNotAccepted = errors.New("ginws: connection not accepted yet")

	// ErrAlreadyAccepted is returned by a second call to Accept.
	ErrAlreadyAccepted = errors.New("ginws: connection already accepted")

	// ErrServerClosed is what a handshake gets (as HTTP 503) once Shutdown has begun.
	ErrServerClosed = errors.New("ginws: server is shutting down")

	// ErrMessageTooLarge is wrapped by every *TooLargeError: a message that alone exceeds the
	// connection's outbound limit.
	ErrMessageTooLarge = errors.New("ginws: message larger than the connection's outbound limit")

	// ErrLayerClosed is returned by a layer that has been closed.
	ErrLayerClosed = errors.New("ginws: channel layer closed")
)

// NameError reports a channel or group name that breaks the naming rules shared with Django
// Channels. Rule says which rule, in words a developer can act on.
type NameError struct {
	Kind string // "channel" or "group"
	Name string
	Rule string
}

func (e *NameError) Error() string {
	return fmt.Sprintf("ginws: invalid %s name %q: %s", e.Kind, e.Name, e.Rule)
}

// Unwrap makes errors.Is(err, ErrInvalidName) true.
func (e *NameError) Unwrap() error { return ErrInvalidName }

// CloseError carries a WebSocket close code and reason. A handler may return one to close its
// connection with that code; Disconnect handlers and the test kit see the code a connection ended with.
type CloseError struct {
	Code   int
	Reason string
}

func (e *CloseError) Error() string {
	if e.Reason == "" {
		return fmt.Sprintf("ginws: websocket closed with code %d", e.Code)
	}
	return fmt.Sprintf("ginws: websocket closed with code %d (%s)", e.Code, e.Reason)
}

// Close returns a *CloseError. A handler that returns it closes its connection with code and reason
// without an error being logged:
//
//	return ginws.Close(4003, "not your room")
func Close(code int, reason string) error { return &CloseError{Code: code, Reason: reason} }

// CloseCode reports the close code carried by err, if err wraps a *CloseError.
func CloseCode(err error) (int, bool) {
	var ce *CloseError
	if errors.As(err, &ce) {
		return ce.Code, true
	}
	return 0, false
}

// TooLargeError is returned by a send whose message alone is larger than the connection's outbound
// limit (Config.OutboundLimit, or WithOutboundLimit's): it could never be queued. This is not a slow
// client — the message is dropped for this connection only, the connection stays open, and
// Stats.TooLarge counts it. When an event handler returns it (a RelayJSON handler does), the drop is
// logged with the event's type, group (where the layer knows it) and size; the other members of the
// group still get the event. Raise the limit of endpoints that send big messages with
// WithOutboundLimit.
type TooLargeError struct {
	Size  int // the message's size on the wire, in bytes
	Limit int // the connection's outbound limit
}

func (e *TooLargeError) Error() string {
	return fmt.Sprintf("ginws: a %d-byte message is over the connection's outbound limit of %d bytes; dropped", e.Size, e.Limit)
}

// Unwrap makes errors.Is(err, ErrMessageTooLarge) true.
func (e *TooLargeError) Unwrap() error { return ErrMessageTooLarge }

// RefuseError refuses a handshake with an HTTP status. Connect may return one (see Refuse) to answer
// with a status other than the default 403.
type RefuseError struct {
	Status int
	Reason string // logged at debug level, never sent to the client
}

func (e *RefuseError) Error() string {
	if e.Reason == "" {
		return fmt.Sprintf("ginws: handshake refused with HTTP %d", e.Status)
	}
	return fmt.Sprintf("ginws: handshake refused with HTTP %d: %s", e.Status, e.Reason)
}

// Refuse returns a *RefuseError: returned from Connect, the handshake is answered with status and no
// upgrade happens. Returning from Connect without calling Accept refuses with 403, as Channels does.
func Refuse(status int, reason string) error {
	if status < 400 || status > 599 {
		status = http.StatusForbidden
	}
	return &RefuseError{Status: status, Reason: reason}
}

// ConfigError reports an invalid configuration field. Every ginws package applies one policy:
// configuration is checked where it is built, and a bad value is refused with a *ConfigError
// naming the field, the value and the rule. Constructors that return an error (redislayer.New)
// return it; the others (New, NewMemoryLayer, yjs.New, the middleware factories) panic with it, as
// regexp.MustCompile and chi do, because a bad literal is a programming error best caught when the
// process starts. Zero values always mean "the default"; what a negative duration means is said on
// each field, and where it is not said, a negative value is refused.
type ConfigError struct {
	Field string // the qualified field, e.g. "ginws.Config.WriteTimeout"
	Value any    // the value refused
	Rule  string // what a valid value is
}

func (e *ConfigError) Error() string {
	return fmt.Sprintf("%s = %v: %s", e.Field, e.Value, e.Rule)
}
