package layer

import (
	"context"
	"errors"
	"sort"
)

// Presence is implemented by layers that know who is in a group: which users have connections
// tracked there, on this process or any other sharing the layer. Memory and the Redis layer
// implement it; ginws tracks the connections of consumers that declare it (ginws.PresenceMember).
//
// A connection is tracked by its channel name, with the user it belongs to. A user with several
// connections in a group (browser tabs, processes) is listed once, with how many there are. When a
// user's first connection is tracked in a group, the layer sends the event
// {"type": "presence.join", "group": g, "user": u, "info": {...}}; when its last one is untracked,
// or expires because its process died, {"type": "presence.leave", "group": g, "user": u}. Each
// such change is announced once, by the one process that made it, with GroupSend to the group's
// companion PresenceGroup(g) — not to g itself, so that the group's other members (a Django
// consumer sharing the room, say) get no events they have no handler for. A channel that should
// hear them joins the companion group (ginws does it for a PresenceMember).
//
// Every method may be called from any goroutine; a bad group or channel name is a *NameError (a
// group name must leave room for the companion's suffix), an empty user ErrNoUser.
type Presence interface {
	// PresenceAdd tracks channel in group as a connection of p.User (again, refreshing p.Info, if
	// it already is).
	PresenceAdd(ctx context.Context, group, channel string, p PresenceInfo) error
	// PresenceDiscard stops tracking channel in group; an untracked channel is not an error.
	PresenceDiscard(ctx context.Context, group, channel string) error
	// PresenceList returns the users present in group, one entry per user, sorted by User.
	PresenceList(ctx context.Context, group string) ([]PresenceEntry, error)
	// PresenceCount returns how many users and connections are present in group.
	PresenceCount(ctx context.Context, group string) (users, connections int, err error)
}

// PresenceInfo is what a tracked connection says about itself: the user it belongs to and a
// JSON-able map the app chooses (a display name, a device...). Keep Info small: it is stored per
// connection and listed with the user.
type PresenceInfo struct {
	User string
	Info map[string]any
}

// PresenceEntry is one user present in a group: Connections counts its tracked connections, and
// Info is that of one of them.
type PresenceEntry struct {
	User        string         `json:"user"`
	Connections int            `json:"connections"`
	Info        map[string]any `json:"info,omitempty"`
}

// Types of the events a Presence layer sends to a group.
const (
	PresenceJoin  = "presence.join"
	PresenceLeave = "presence.leave"
)

// PresenceGroup returns the group that hears the presence events of group: group + ".presence".
func PresenceGroup(group string) string { return group + ".presence" }

// ErrNoUser is returned by PresenceAdd when PresenceInfo.User is empty.
var ErrNoUser = errors.New("layer: presence needs a user")

// joinEvent returns the presence.join event of user in group.
func joinEvent(group string, p PresenceInfo) Message {
	m := Message{"type": PresenceJoin, "group": group, "user": p.User}
	if p.Info != nil {
		m["info"] = Message(p.Info).Clone()
	}
	return m
}

func leaveEvent(group, user string) Message {
	return Message{"type": PresenceLeave, "group": group, "user": user}
}

// presence state of a Memory. Guarded by Memory.mu.
type memPresence struct {
	conns map[string]PresenceInfo // channel → what it tracked
	users map[string]int          // user → connections
}

// outEvent is a presence event waiting in Memory.events, which sends them in the order the
// changes were made, without the layer's lock held (drain.Queue).
type outEvent struct {
	group string
	msg   Message
}

func checkPresence(group, channel string) error {
	if err := ValidatePresenceGroup(group); err != nil {
		return err
	}
	return ValidateChannelName(channel)
}

// ValidatePresenceGroup checks a group name for presence (for layers implementing Presence): a
// valid group name whose companion, PresenceGroup(group), is valid too.
func ValidatePresenceGroup(group string) error {
	if err := ValidateGroupName(group); err != nil {
		return err
	}
	return ValidateGroupName(PresenceGroup(group))
}

// PresenceAdd tracks channel in group; see Presence.
func (l *Memory) PresenceAdd(ctx context.Context, group, channel string, p PresenceInfo) error {
	if err := checkPresence(group, channel); err != nil {
		return err
	}
	if p.User == "" {
		return ErrNoUser
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	p.Info = Message(p.Info).Clone()
	var evs []outEvent
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return ErrClosed
	}
	g := l.presence[group]
	if g == nil {
		g = &memPresence{conns: make(map[string]PresenceInfo), users: make(map[string]int)}
		l.presence[group] = g
	}
	old, had := g.conns[channel]
	g.conns[channel] = p
	if had && old.User != p.User {
		evs = g.drop(group, old.User, evs)
	}
	if !had || old.User != p.User {
		g.users[p.User]++
		if g.users[p.User] == 1 {
			evs = append(evs, outEvent{group, joinEvent(group, p)})
		}
	}
	l.mu.Unlock()
	l.events.Send(evs, l.announce)
	return nil
}

// drop counts one connection of user out of g. Callers hold Memory.mu.
func (g *memPresence) drop(group, user string, evs []outEvent) []outEvent {
	g.users[user]--
	if g.users[user] <= 0 {
		delete(g.users, user)
		evs = append(evs, outEvent{group, leaveEvent(group, user)})
	}
	return evs
}

// PresenceDiscard stops tracking channel in group; see Presence.
func (l *Memory) PresenceDiscard(ctx context.Context, group, channel string) error {
	if err := checkPresence(group, channel); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	var evs []outEvent
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return ErrClosed
	}
	if g := l.presence[group]; g != nil {
		if p, ok := g.conns[channel]; ok {
			delete(g.conns, channel)
			evs = g.drop(group, p.User, evs)
			if len(g.conns) == 0 {
				delete(l.presence, group)
			}
		}
	}
	l.mu.Unlock()
	l.events.Send(evs, l.announce)
	return nil
}

// PresenceList returns the users present in group; see Presence.
func (l *Memory) PresenceList(ctx context.Context, group string) ([]PresenceEntry, error) {
	if err := ValidatePresenceGroup(group); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.closed {
		return nil, ErrClosed
	}
	g := l.presence[group]
	if g == nil {
		return []PresenceEntry{}, nil
	}
	out := make([]PresenceEntry, 0, len(g.users))
	idx := make(map[string]int, len(g.users))
	for _, p := range g.conns {
		i, ok := idx[p.User]
		if !ok {
			i = len(out)
			idx[p.User] = i
			out = append(out, PresenceEntry{User: p.User, Info: Message(p.Info).Clone()})
		}
		out[i].Connections++
	}
	sort.Slice(out, func(i, j int) bool { return out[i].User < out[j].User })
	return out, nil
}

// PresenceCount returns how many users and connections are present in group; see Presence.
func (l *Memory) PresenceCount(ctx context.Context, group string) (users, connections int, err error) {
	if err := ValidatePresenceGroup(group); err != nil {
		return 0, 0, err
	}
	if err := ctx.Err(); err != nil {
		return 0, 0, err
	}
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.closed {
		return 0, 0, ErrClosed
	}
	if g := l.presence[group]; g != nil {
		return len(g.users), len(g.conns), nil
	}
	return 0, 0, nil
}

// announce sends presence events, in order, never into a history (a rule such as "chat_*"
// matches the companion groups too, and a stale join or leave must not be replayed); a failure
// (the layer closed meanwhile) loses the event.
func (l *Memory) announce(evs []outEvent) {
	for _, e := range evs {
		_ = l.groupSend(PresenceGroup(e.group), e.msg, nil)
	}
}

// PresenceEvent returns the event a Presence layer sends to group when user joins it (join true,
// with info) or leaves it (for layers implementing Presence).
func PresenceEvent(group string, join bool, p PresenceInfo) Message {
	if join {
		return joinEvent(group, p)
	}
	return leaveEvent(group, p.User)
}
