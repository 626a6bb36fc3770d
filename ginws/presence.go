package ginws

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"ginws.dev/ginws/layer"
)

// PresenceMember is implemented by consumers that say who is connected, as easily as Groups()
// says where: Presence returns the groups to be seen in and the user (with a small JSON-able
// info map) to be seen as. It needs a layer that implements layer.Presence (layer.Memory and the
// Redis layer do; Mount refuses the handshake with 500 otherwise).
//
// After Connect accepts, the connection is tracked in each group and joins its companion group
// (layer.PresenceGroup), which hears the events; before Disconnect it is untracked. The tracked
// connections — this one too — get "presence.join" when a user's first connection arrives and
// "presence.leave" when its last one goes (or its process dies): once per user, not per tab, on
// every process. Handle them like any event (Events). The group itself gets no presence events. A consumer whose Events has a "presence.state" handler gets, right after it is
// tracked, {"type": "presence.state", "group": g, "members": []layer.PresenceEntry} per group:
// who is there, sorted, itself included — what a page shows before the first join. An HTTP view
// reads a group's presence from the Server's layer:
//
//	entries, err := ws.Layer().(layer.Presence).PresenceList(ctx, "chat_lobby")
type PresenceMember interface {
	Presence() (groups []string, p layer.PresenceInfo)
}

// presenceState is the type of the snapshot a PresenceMember gets after it is tracked.
const presenceState = "presence.state"

var errNoPresence = errors.New("ginws: the consumer declares Presence() but the channel layer does not implement layer.Presence")

// checkPresence refuses a PresenceMember on a layer without presence, before Connect.
func (c *Conn) checkPresence() error {
	if _, ok := c.consumer.(PresenceMember); !ok {
		return nil
	}
	if _, ok := c.srv.cfg.Layer.(layer.Presence); !ok {
		return errNoPresence
	}
	return nil
}

// trackPresence runs after Connect accepted, on the handshake's goroutine: it joins and tracks the
// consumer's presence groups, then queues the "presence.state" snapshots. A failure closes the
// connection with 1011 (as a failed handler does).
func (c *Conn) trackPresence(ctx context.Context) {
	pm, ok := c.consumer.(PresenceMember)
	if !ok {
		return
	}
	pres := c.srv.cfg.Layer.(layer.Presence) // checked by checkPresence
	groups, info := pm.Presence()
	state := c.handles(presenceState)
	for _, g := range groups {
		if err := c.GroupAdd(ctx, layer.PresenceGroup(g)); err != nil {
			c.failed("Presence", "", g, fmt.Errorf("ginws: join presence group: %w", err))
			return
		}
		if err := pres.PresenceAdd(ctx, g, c.channel, info); err != nil {
			c.failed("Presence", "", g, fmt.Errorf("ginws: track presence: %w", err))
			return
		}
		c.mu.Lock()
		left := c.stateNow() == stateClosed // untrackPresence has run
		if r := c.rareLocked(); !left && !slices.Contains(r.tracked, g) {
			r.tracked = append(r.tracked, g)
		}
		c.mu.Unlock()
		if left {
			_ = pres.PresenceDiscard(ctx, g, c.channel)
			return
		}
		if !state {
			continue
		}
		members, err := pres.PresenceList(ctx, g)
		if err != nil {
			c.failed("Presence", "", g, fmt.Errorf("ginws: list presence: %w", err))
			return
		}
		// Queued like a layer event: it reaches the handler after the events delivered before it.
		_ = c.deliver(layer.NewEnvelope(layer.Message{"type": presenceState, "group": g, "members": members}, g))
	}
}

// untrackPresence untracks the connection from every presence group; it runs before the groups
// are left and before Disconnect.
func (c *Conn) untrackPresence(ctx context.Context) {
	c.mu.Lock()
	r := c.rareNow()
	groups := r.tracked
	if len(groups) > 0 {
		r.tracked = nil
	}
	c.mu.Unlock()
	if len(groups) == 0 {
		return
	}
	pres := c.srv.cfg.Layer.(layer.Presence)
	for _, g := range groups {
		if err := pres.PresenceDiscard(ctx, g, c.channel); err != nil {
			c.Logger().Warn("ginws: untracking presence failed", "group", g, "error", err)
		}
	}
}

// handles reports whether the consumer has a handler for event type typ.
func (c *Conn) handles(typ string) bool {
	for _, e := range c.events {
		if sameType(e.name, typ) {
			return true
		}
	}
	return false
}
