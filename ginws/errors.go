package ginws

import (
	"errors"
	"fmt"
	"net/http"

	"ginws.dev/ginws/layer"
)

// Sentinel errors. Compare with errors.Is: the values returned by ginws may wrap them with more detail.
var (
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
)

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

// NewCloseError returns a *CloseError. A handler that returns it closes its connection with code and reason
// without an error being logged:
//
//	return ginws.NewCloseError(4003, "not your room")
func NewCloseError(code int, reason string) error { return &CloseError{Code: code, Reason: reason} }

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

// ConfigError reports an invalid configuration field: New panics with one (see layer.ConfigError,
// the same type, for the policy every ginws package follows).
type ConfigError = layer.ConfigError
