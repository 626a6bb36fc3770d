package ginws

import (
	"context"
	"fmt"

	"ginws.dev/ginws/layer"
)

// Closing connections from anywhere. A logout view must be able to end the sockets of the session
// it signs out, on every process of the app. Channels leaves this to each app (add the consumer to
// a group per user, handle a custom event that closes); ginws builds it in the same way, so that
// it works with every layer and needs no consumer code:
//
//   - Config.Groups names groups every connection joins at the handshake (a group per user, one
//     per session), next to the consumer's own;
//   - Server.CloseGroup group-sends a close event to one of them through the layer, so it reaches
//     the members on every process sharing the layer;
//   - each connection handles that event itself, in order with its other events, and closes with
//     the code and reason the event carries. The consumer's Disconnect gets the code.
//
// The event is the layer message {"type": "ginws.close", "code": 4001, "reason": "signed out"}; a
// Layer.Send of it to one channel name closes that one connection. Unlike other events, a close
// event is queued even when the connection's event queue is full, so that a busy or flooded
// socket is still signed out; it is handled after the events queued before it.

// closeEventType is the type of the event a connection handles by closing itself. The "ginws."
// prefix is reserved: a consumer cannot register a handler for it.
const closeEventType = "ginws.close"

// closeEvent returns the layer message that makes the connection receiving it close with code and
// reason. code 0 means 1000; a code a server may not send is an error.
func closeEvent(code int, reason string) (layer.Message, error) {
	if code == 0 {
		code = CloseNormal
	}
	if !validCloseCode(code) {
		return nil, fmt.Errorf("ginws: close code %d may not be sent (use 1000-1014 except 1004-1006, or 3000-4999)", code)
	}
	return layer.Message{"type": closeEventType, "code": code, "reason": reason}, nil
}

// CloseGroup closes every connection in group, on every process that shares the server's layer,
// with code (0 means 1000) and reason — the logout view's "sign this session out everywhere":
//
//	ws := ginws.New(ginws.Config{Groups: func(s *ginws.Scope) []string { return []string{"session." + sid(s)} }})
//	r.POST("/logout", func(c *gin.Context) { _ = ws.CloseGroup(c, "session."+sid(c), 4001, "signed out") })
//
// It returns once the layer has taken the event; the connections close as they handle it. Groups
// usually come from Config.Groups; any group works.
func (s *Server) CloseGroup(ctx context.Context, group string, code int, reason string) error {
	msg, err := closeEvent(code, reason)
	if err != nil {
		return err
	}
	return s.cfg.Layer.GroupSend(ctx, group, msg)
}

// handleCloseEvent closes the connection as a close event asks. Pump goroutine only.
func (c *Conn) handleCloseEvent(env *layer.Envelope) {
	code64, _ := env.Message.Int("code")
	code := int(code64)
	if code64 != int64(code) || !validCloseCode(code) {
		code = ClosePolicyViolation // still close: whoever sent it wanted this connection gone
	}
	reason, _ := env.Message.Str("reason")
	c.Logger().Info("ginws: closing on request", "close_code", code, "reason", reason, "group", env.Group())
	c.closeWith(code, reason)
}
