// Package layer is the channel layer of Django Channels, in Go and without any web framework: the
// Layer interface (send to a channel, receive, groups, group send), the Message that travels
// through it, Channels' naming rules, Memory, the in-process layer, and Worker, which serves named
// channels as Channels' runworker does. Package ginws runs WebSocket consumers on a layer;
// ginws/redislayer is the Redis layer, wire-compatible with channels_redis. A Go process that only
// talks to a Django app through Redis — a background worker, say — imports this package and
// redislayer, and nothing of the web stack.
//
// A message is a map whose "type" names the event:
//
//	err := l.GroupSend(ctx, "chat_lobby", layer.Message{"type": "chat.message", "message": "hi"})
//
// Every Layer method may be called from any goroutine. Layer implementations check themselves
// against the shared conformance suite in ginws/layertest.
package layer
