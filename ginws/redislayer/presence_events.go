package redislayer

import (
	"sync"

	"ginws.dev/ginws/layer"
)

// Presence events on the wire. A process announces the joins and leaves it learned of together
// (one script call's, or those queued while the previous send was in flight) in one message per
// group: a single change as the plain event layer.Presence describes, several as one
// {"type": "ginws.presence.batch", "group": g, "events": [["j", user, info], ["l", user], ...]}.
// A receiving Layer expands a batch into the plain events, in order, before anything else sees
// it, so receivers — subscribers, Receive, and through them consumers — get one presence.join or
// presence.leave per user as ever. A process that does not know the batch (channels_redis, an
// older ginws) would get it as one message of that type: presence events are for ginws
// consumers; the group's own messages are untouched.

// presenceBatchType is the type of a message carrying several presence events.
const presenceBatchType = "ginws.presence.batch"

// maxEventsPerMessage bounds the events of one batch message, so that a message stays small.
const maxEventsPerMessage = 64

// presenceMessage returns the message announcing evs, all of group.
func presenceMessage(group string, evs []presenceEvent) layer.Message {
	if len(evs) == 1 {
		e := evs[0]
		return layer.PresenceEvent(group, e.join, layer.PresenceInfo{User: e.user, Info: e.info})
	}
	list := make([]any, len(evs))
	for i, e := range evs {
		switch {
		case !e.join:
			list[i] = []any{"l", e.user}
		case e.info != nil:
			list[i] = []any{"j", e.user, e.info}
		default:
			list[i] = []any{"j", e.user}
		}
	}
	return layer.Message{"type": presenceBatchType, "group": group, "events": list}
}

// expandPresence returns the events a batch message carries, in order, and whether msg is a batch.
// Entries that are not well-formed are skipped.
func expandPresence(msg layer.Message) ([]layer.Message, bool) {
	if msg.Type() != presenceBatchType {
		return nil, false
	}
	group, _ := msg["group"].(string)
	list, _ := msg["events"].([]any)
	out := make([]layer.Message, 0, len(list))
	for _, x := range list {
		e, _ := x.([]any)
		if len(e) < 2 {
			continue
		}
		kind, _ := e[0].(string)
		user, _ := e[1].(string)
		if user == "" || (kind != "j" && kind != "l") {
			continue
		}
		p := layer.PresenceInfo{User: user}
		if len(e) > 2 {
			p.Info, _ = e[2].(map[string]any)
		}
		out = append(out, layer.PresenceEvent(group, kind == "j", p))
	}
	return out, true
}

// expand appends to batch the messages r stands for: r itself, or the events of a batch.
func expand(batch []routed, r routed) []routed {
	msgs, ok := expandPresence(r.env.Message)
	if !ok {
		return append(batch, r)
	}
	for _, m := range msgs {
		env := layer.NewEnvelope(m, r.env.Group())
		env.Position = r.env.Position
		batch = append(batch, routed{env: env, channels: r.channels})
	}
	return batch
}

// expandedQueue holds, per normal-channel key, the events of a batch that Receive popped but has
// not returned yet. Guarded by mu.
type expandedQueue struct {
	mu   sync.Mutex
	msgs map[string][]layer.Message
}

// take returns the next held message of key.
func (q *expandedQueue) take(key string) (layer.Message, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	list := q.msgs[key]
	if len(list) == 0 {
		return nil, false
	}
	m := list[0]
	if len(list) == 1 {
		delete(q.msgs, key)
	} else {
		q.msgs[key] = list[1:]
	}
	return m, true
}

// hold keeps msgs, to be returned by the next Receive calls on key, after what is held already.
func (q *expandedQueue) hold(key string, msgs []layer.Message) {
	if len(msgs) == 0 {
		return
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.msgs == nil {
		q.msgs = make(map[string][]layer.Message)
	}
	q.msgs[key] = append(q.msgs[key], msgs...)
}
