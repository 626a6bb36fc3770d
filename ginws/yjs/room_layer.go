package yjs

import (
	"context"
	"time"

	"ginws.dev/ginws/layer"
	"ginws.dev/ginws/yjs/yproto"
	"ginws.dev/ginws/yjs/yupdate"
)

// The messages rooms exchange through the channel layer. Every process that holds a room has one
// channel in the room's group (GroupName); a message carries the sending room's channel as its
// origin, so the sender ignores its own when the group send comes back to it.
//
//	{"type": "yjs.update",    "update": <v1 update>, "origin": <channel>}
//	{"type": "yjs.awareness", "update": <awareness update>, "origin": <channel>}
//	{"type": "yjs.hello",     "sv": <state vector>, "reply_to": <channel>, "origin": <channel>}
//	{"type": "yjs.sync",      "update": <diff>?, "sv": <state vector>, "awareness": <update>?,
//	                          "reply_to": <channel>, "origin": <channel>}
//	{"type": "doc_update",    "update": <v1 update>}   (ypy-websocket's send_doc_update; Server.Update)
//
// A room that loads, or that lost messages, sends yjs.hello to the group; every other holder
// answers point to point with yjs.sync — what the newcomer lacks, and its own state vector — and
// the newcomer sends back, as yjs.update, what the other lacks. The same exchange runs every
// ResyncInterval, which repairs any message a layer dropped.
const (
	typeUpdate    = "yjs.update"
	typeAwareness = "yjs.awareness"
	typeHello     = "yjs.hello"
	typeSync      = "yjs.sync"
	typeDocUpdate = "doc_update"

	keyUpdate    = "update"
	keyResync    = "resync" // an update answering a state-vector exchange, not a live edit
	keyOrigin    = "origin"
	keySV        = "sv"
	keyReplyTo   = "reply_to"
	keyAwareness = "awareness"
	keyPersisted = "persisted"
)

// handleLayer handles one message from another process. Bad messages are logged and dropped:
// they never reach the document or the clients.
func (r *room) handleLayer(msg layer.Message) {
	switch typ := msg.Type(); typ {
	case typeUpdate, typeDocUpdate:
		u, ok := msg.Bytes(keyUpdate)
		if !ok {
			r.log.Warn("yjs: layer message without an update", "type", typ)
			return
		}
		persisted, _ := msg.Bool(keyPersisted)
		resync, _ := msg.Bool(keyResync)
		// A doc_update from elsewhere is stored by every process that holds the room (the
		// copies merge away on compaction); ours (yjs.update) is stored by its sender.
		r.applyFromLayer(u, typ == typeDocUpdate && !persisted, resync)
	case typeAwareness:
		if u, ok := msg.Bytes(keyUpdate); ok {
			r.awarenessFromLayer(u)
		}
	case typeHello:
		r.answerHello(msg)
	case typeSync:
		r.handleSync(msg)
	default:
		r.log.Warn("yjs: unknown layer message ignored", "type", typ)
	}
}

// applyFromLayer validates an update from another process and applies it. A resync update (the
// answer to a state-vector exchange) was computed against a state vector that live relays may have
// overtaken since, so it is first cut down to what the room still lacks, as a client's step 2 is:
// the local clients must not be sent again what they already have.
func (r *room) applyFromLayer(u []byte, store, resync bool) {
	if err := r.srv.checkUpdate(u); err != nil {
		r.log.Warn("yjs: bad update from the layer ignored", "error", err)
		return
	}
	if resync {
		novel, err := r.novel(u)
		if err != nil {
			r.log.Warn("yjs: resync update not applied", "error", err)
			return
		}
		u = novel
	}
	if u == nil || yupdate.IsEmpty(u) {
		return
	}
	if err := r.apply(u, nil, store); err != nil && err != ErrClosed {
		r.log.Warn("yjs: update from the layer not applied", "error", err)
	}
}

// awarenessFromLayer applies another process's awareness update and relays what changed to the
// local members.
func (r *room) awarenessFromLayer(u []byte) {
	entries, err := yproto.DecodeAwareness(u)
	if err != nil {
		r.log.Warn("yjs: bad awareness update from the layer ignored", "error", err)
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return
	}
	if acc := r.aw.apply(entries, nil, time.Now(), r.srv.cfg.MaxAwarenessClients); len(acc) > 0 {
		r.broadcastLocked(yproto.AppendAwareness(nil, yproto.AppendAwarenessUpdate(nil, acc)), nil)
	}
}

// hello asks the other processes holding the room for what this one lacks.
func (r *room) hello(ctx context.Context) {
	_, sv, err := r.snapshot()
	if err != nil {
		r.log.Error("yjs: state vector", "error", err)
		return
	}
	r.publish(ctx, layer.Message{"type": typeHello, keySV: sv, keyReplyTo: r.channel, keyOrigin: r.channel})
}

// answerHello sends the asking room what it lacks, this room's state vector (so that it sends
// back what this one lacks) and the awareness states known here.
func (r *room) answerHello(msg layer.Message) {
	to, _ := msg.Str(keyReplyTo)
	their, ok := msg.Bytes(keySV)
	if to == "" || !ok {
		r.log.Warn("yjs: malformed hello from the layer ignored")
		return
	}
	full, sv, err := r.snapshot()
	if err != nil {
		r.log.Error("yjs: state vector", "error", err)
		return
	}
	reply := layer.Message{"type": typeSync, keySV: sv, keyReplyTo: r.channel, keyOrigin: r.channel}
	if full != nil {
		diff, err := yupdate.Diff(full, their)
		if err != nil {
			r.log.Warn("yjs: bad state vector in a hello", "error", err)
			return
		}
		if !yupdate.IsEmpty(diff) {
			reply[keyUpdate] = diff
		}
	}
	r.mu.Lock()
	if states := r.aw.all(); len(states) > 0 {
		reply[keyAwareness] = yproto.AppendAwarenessUpdate(nil, states)
	}
	r.mu.Unlock()
	r.sendTo(to, reply)
}

// handleSync applies another room's answer to a hello and sends it what it lacks.
func (r *room) handleSync(msg layer.Message) {
	if u, ok := msg.Bytes(keyUpdate); ok {
		r.applyFromLayer(u, false, true)
	}
	if a, ok := msg.Bytes(keyAwareness); ok {
		r.awarenessFromLayer(a)
	}
	to, _ := msg.Str(keyReplyTo)
	their, ok := msg.Bytes(keySV)
	if to == "" || !ok {
		return
	}
	full, _, err := r.snapshot()
	if err != nil || full == nil {
		return
	}
	diff, err := yupdate.Diff(full, their)
	if err != nil {
		r.log.Warn("yjs: bad state vector in a sync", "error", err)
		return
	}
	if !yupdate.IsEmpty(diff) {
		r.sendTo(to, layer.Message{"type": typeUpdate, keyUpdate: diff, keyOrigin: r.channel, keyResync: true})
	}
}

// sendTo sends msg to one room channel of another process.
func (r *room) sendTo(channel string, msg layer.Message) {
	if err := layer.ValidateChannelName(channel); err != nil {
		r.log.Warn("yjs: bad reply_to in a layer message", "error", err)
		return
	}
	ctx, cancel := r.srv.opCtx()
	defer cancel()
	if err := r.srv.layer.Send(ctx, channel, msg); err != nil {
		r.srv.stats.layerErrors.Add(1)
		r.log.Warn("yjs: reply to another process failed", "type", msg.Type(), "error", err)
	}
}
