package yjs

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"

	"ginws.dev/ginws"
	"ginws.dev/ginws/yjs/yproto"
	"ginws.dev/ginws/yjs/yupdate"
)

// consumer is one y-websocket connection. Like every ginws consumer, its handlers run one at a
// time; its room is shared with the other connections and guarded by the room's lock.
type consumer struct {
	ginws.WebsocketConsumer
	srv    *Server
	room   *room
	access Access

	// claimed lists the awareness client IDs this connection has published a state for, as their
	// originator (see awareness.claims), over its whole life: at most MaxClientsPerConn, so a
	// connection that churns through IDs is bounded too. Guarded by room.mu.
	claimed []uint64
	// hello tracks the opening y-websocket sends: its sync step 1, then its own awareness state.
	// Only the connection's handlers touch it.
	hello helloPhase
	// oversized records that an awareness state of this connection was ignored for its size and
	// logged (once per connection); guarded by room.mu.
	oversized bool
}

var _ ginws.Consumer = (*consumer)(nil)

// Connect names the room, authorizes, loads the room, accepts, and sends sync step 1 and the
// awareness states.
func (c *consumer) Connect(ctx context.Context) error {
	s := c.srv
	name, err := s.cfg.RoomName(c.Scope())
	if err != nil {
		return refusal(err, http.StatusNotFound)
	}
	access := ReadWrite
	if s.cfg.Authorize != nil {
		if access, err = s.cfg.Authorize(ctx, c.Scope(), name); err != nil {
			return refusal(err, http.StatusInternalServerError)
		}
	}
	if access <= NoAccess {
		return ginws.Refuse(http.StatusForbidden, "yjs: no access to room "+name)
	}
	lctx, cancel := context.WithTimeout(ctx, 2*s.cfg.LayerTimeout)
	r, err := s.acquire(lctx, name)
	cancel()
	if err != nil {
		if !errors.Is(err, ErrClosed) {
			s.log.Error("yjs: room unavailable", "room", name, "error", err)
		}
		return ginws.Refuse(http.StatusServiceUnavailable, "yjs: room unavailable: "+err.Error())
	}
	// A Yjs socket carries bigger messages than the server's defaults are made for: offline edits
	// arrive in one sync step 2, and a newcomer is sent the whole document in one frame.
	limits := []ginws.AcceptOption{
		ginws.WithReadLimit(int64(s.cfg.MaxUpdateSize) + frameSlack),
		ginws.WithOutboundLimit(2*s.cfg.MaxDocumentSize + frameSlack),
		// y-websocket reconnects and resends after 1009, so a frame over the limit gets 4413.
		ginws.WithTooBigClose(CloseUpdateTooLarge, "update too large"),
	}
	if err := c.Accept(limits...); err != nil {
		s.release(r)
		return err
	}
	// From here on Disconnect (which runs for every accepted connection) leaves the room.
	c.room, c.access = r, access
	if err := r.join(c); err != nil {
		if errors.Is(err, ErrClosed) {
			return ginws.NewCloseError(ginws.CloseGoingAway, "server shutting down")
		}
		return err
	}
	return nil
}

// frameSlack covers a y-protocols message's header around an update (type, sync type, length).
const frameSlack = 64

func refusal(err error, status int) error {
	var re *ginws.RefuseError
	if errors.As(err, &re) {
		return err
	}
	return ginws.Refuse(status, err.Error())
}

// Receive handles one y-protocols message. Malformed input closes the connection with a code
// that says why and a log line; it never reaches the room.
func (c *consumer) Receive(ctx context.Context, f ginws.ClientMessage) error {
	if !f.Binary {
		return c.reject(ginws.CloseUnsupportedData, "binary frames only", nil)
	}
	m, err := yproto.Decode(f.Data)
	if errors.Is(err, yproto.ErrUnknownType) {
		return c.reject(ginws.CloseUnsupportedData, "unsupported message type", err)
	}
	if err != nil {
		return c.reject(ginws.CloseInvalidPayload, "malformed message", err)
	}
	hello := c.hello.next(m)
	switch m.Type {
	case yproto.MsgSync:
		switch m.SyncType {
		case yproto.SyncStep1:
			return c.step1(m.Payload)
		case yproto.SyncStep2, yproto.SyncUpdate:
			return c.update(ctx, m.Payload, m.SyncType == yproto.SyncStep2)
		}
		return c.reject(ginws.CloseInvalidPayload, "unknown sync message", nil)
	case yproto.MsgAwareness:
		err := c.room.awarenessFromClient(ctx, c, m.Payload, hello)
		switch {
		case err == nil:
			return nil
		case errors.Is(err, errTooManyClients):
			return c.reject(ginws.ClosePolicyViolation, "too many awareness clients", err)
		case errors.Is(err, ErrClosed):
			return ginws.NewCloseError(ginws.CloseGoingAway, "server shutting down")
		}
		return c.reject(ginws.CloseInvalidPayload, "malformed awareness update", err)
	case yproto.MsgQueryAwareness:
		return c.SendBinary(c.room.awarenessMessage())
	case yproto.MsgAuth:
		return nil // clients do not send it; nothing to do
	}
	return c.reject(ginws.CloseUnsupportedData, "unsupported message type", nil)
}

func (c *consumer) step1(sv []byte) error {
	err := c.room.answerStep1(c, sv)
	var bad errBadStateVector
	if errors.As(err, &bad) {
		return c.reject(ginws.CloseInvalidPayload, "malformed state vector", err)
	}
	return err
}

// update applies a sync step 2 or update message, or refuses it.
//
// A step 2 is first cut down to what the room lacks (yupdate.Novel): Yjs writes its whole delete
// set into every step 2, so after any deletion a reconnecting client's step 2 is never empty,
// and relaying, storing and counting it again would make every reconnect cost the other members
// a delete set (N reconnecting clients, N² relays) and grow the document towards
// MaxDocumentSize. One that adds nothing is dropped silently, from a read-only client too. Live
// updates are applied as they are: a Yjs client sends one only for a change of its own, and
// filtering each keystroke would cost a pass over the whole document.
func (c *consumer) update(ctx context.Context, u []byte, step2 bool) error {
	s := c.srv
	if len(u) > s.cfg.MaxUpdateSize {
		s.stats.refused.Add(1)
		return c.reject(CloseUpdateTooLarge, "update too large", fmt.Errorf("%d bytes", len(u)))
	}
	if yupdate.IsEmpty(u) {
		return nil // the empty step 2 a client with nothing new sends
	}
	if c.access < ReadWrite && !step2 {
		s.stats.refused.Add(1)
		return c.SendBinary(yproto.AppendPermissionDenied(nil, "read-only access"))
	}
	if err := yupdate.Validate(u); err != nil {
		s.stats.refused.Add(1)
		return c.reject(ginws.CloseInvalidPayload, "malformed update", err)
	}
	if step2 {
		novel, err := c.room.novel(u)
		if err != nil {
			return err
		}
		if novel == nil {
			return nil // everything in it is in the room already
		}
		if c.access < ReadWrite {
			s.stats.refused.Add(1)
			return c.SendBinary(yproto.AppendPermissionDenied(nil, "read-only access"))
		}
		u = novel
	}
	err := c.room.applyLocal(ctx, c, u)
	switch {
	case errors.Is(err, ErrDocumentTooLarge):
		s.stats.refused.Add(1)
		return c.reject(CloseDocumentTooLarge, "document too large", err)
	case errors.Is(err, ErrClosed):
		return ginws.NewCloseError(ginws.CloseGoingAway, "server shutting down")
	}
	return err
}

// reject logs why a client's input was refused and closes the connection with code.
func (c *consumer) reject(code int, reason string, err error) error {
	attrs := []any{"close_code", code, "reason", reason}
	if err != nil {
		attrs = append(attrs, "error", err)
	}
	if c.room != nil {
		attrs = append(attrs, "room", c.room.name)
	}
	c.Logger().Info("yjs: closing a connection after bad input", attrs...)
	return ginws.NewCloseError(code, reason)
}

// Disconnect ends the awareness states the connection published and leaves the room.
func (c *consumer) Disconnect(ctx context.Context, code int) {
	if c.room == nil {
		return
	}
	c.room.leave(ctx, c)
	c.srv.release(c.room)
}

// mayClaim reports whether the IDs that entries would make c the publisher of keep it within max
// claimed IDs. Callers hold room.mu.
func (c *consumer) mayClaim(ids []uint64, max int) bool {
	n := len(c.claimed)
	for _, id := range ids {
		if !slices.Contains(c.claimed, id) {
			n++
		}
	}
	return n <= max
}

// track records the IDs c now publishes (accepted non-null entries). Callers hold room.mu.
func (c *consumer) track(accepted []yproto.AwarenessEntry) {
	for _, e := range accepted {
		if !isNull(e.State) && !slices.Contains(c.claimed, e.ClientID) {
			c.claimed = append(c.claimed, e.ClientID)
		}
	}
}

// helloPhase follows a connection's first messages to find its hello: y-websocket opens every
// connection with its sync step 1 and, right after it, an awareness message with its own state
// alone, before it has read anything from the server. It is the one message of a connection known
// to hold the client's own ID (later awareness messages may be relays of other clients' states).
type helloPhase uint8

const (
	helloBeforeStep1 helloPhase = iota // no sync step 1 yet
	helloNext                          // the next message, if awareness, is the hello
	helloDone
)

// next advances the phase with m and reports whether m is the hello.
func (h *helloPhase) next(m yproto.Message) bool {
	switch *h {
	case helloBeforeStep1:
		if m.Type == yproto.MsgSync && m.SyncType == yproto.SyncStep1 {
			*h = helloNext
		}
	case helloNext:
		*h = helloDone
		return m.Type == yproto.MsgAwareness
	}
	return false
}
