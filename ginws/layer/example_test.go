package layer_test

import (
	"context"
	"errors"
	"fmt"

	"ginws.dev/ginws/layer"
)

func ExampleNewMemory() {
	ctx := context.Background()
	lay := layer.NewMemory(layer.MemoryConfig{Capacity: 2})
	_ = lay.GroupAdd(ctx, "news", "reader-1")
	_ = lay.GroupAdd(ctx, "news", "reader-2")
	_ = lay.GroupSend(ctx, "news", layer.Message{"type": "news.item", "title": "ginws ships"})

	msg, _ := lay.Receive(ctx, "reader-1")
	fmt.Println(msg.Type(), msg["title"])

	_ = lay.Send(ctx, "reader-2", layer.Message{"type": "filler"})
	err := lay.Send(ctx, "reader-2", layer.Message{"type": "one.too.many"})
	fmt.Println(errors.Is(err, layer.ErrChannelFull))
	// Output:
	// news.item ginws ships
	// true
}

func ExampleValidateGroupName() {
	fmt.Println(layer.ValidateGroupName("chat_lobby"))
	fmt.Println(layer.ValidateGroupName("chat lobby"))
	// Output:
	// <nil>
	// layer: invalid group name "chat lobby": only ASCII letters, digits, '-', '_' and '.' are allowed (found ' ')
}

// Presence on any layer that has it: track connections with their user, list one entry per user,
// and hear joins and leaves in the companion group.
func ExamplePresence() {
	ctx := context.Background()
	var lay layer.Layer = layer.NewMemory(layer.MemoryConfig{})
	p := lay.(layer.Presence)
	_ = lay.GroupAdd(ctx, layer.PresenceGroup("room"), "watcher") // hears presence.join/leave

	_ = p.PresenceAdd(ctx, "room", "tab-1", layer.PresenceInfo{User: "ada"})
	_ = p.PresenceAdd(ctx, "room", "tab-2", layer.PresenceInfo{User: "ada"}) // a second tab: no event
	_ = p.PresenceAdd(ctx, "room", "tab-3", layer.PresenceInfo{User: "bob"})
	list, _ := p.PresenceList(ctx, "room")
	for _, e := range list {
		fmt.Println(e.User, e.Connections)
	}
	_ = p.PresenceDiscard(ctx, "room", "tab-3")
	for range 3 {
		ev, _ := lay.Receive(ctx, "watcher")
		fmt.Println(ev.Type(), ev["user"])
	}
	// Output:
	// ada 2
	// bob 1
	// presence.join ada
	// presence.join bob
	// presence.leave bob
}

// A group with history: a reader that went away resumes from the position of the last message it
// saw and receives what it missed, then live messages.
func ExampleMemory_GroupAddSince() {
	ctx := context.Background()
	lay := layer.NewMemory(layer.MemoryConfig{History: []layer.HistoryRule{{Pattern: "news*", Size: 100}}})
	got := make(chan *layer.Envelope, 10)
	unsubscribe, _ := lay.Subscribe("reader!1", func(e *layer.Envelope) error { got <- e; return nil })
	defer unsubscribe()

	_ = lay.GroupAdd(ctx, "news", "reader!1")
	_ = lay.GroupSend(ctx, "news", layer.Message{"type": "news.item", "title": "one"})
	seen := (<-got).Position // what a client would keep, as seen.String()
	_ = lay.GroupDiscard(ctx, "news", "reader!1")

	_ = lay.GroupSend(ctx, "news", layer.Message{"type": "news.item", "title": "two"}) // missed
	rec, _ := lay.GroupAddSince(ctx, "news", "reader!1", seen)
	_ = lay.GroupSend(ctx, "news", layer.Message{"type": "news.item", "title": "three"})
	fmt.Println("gap:", rec.Gap, "replayed:", rec.Replayed)
	for range 2 {
		e := <-got
		fmt.Println(e.Position.Offset, e.Message["title"])
	}
	// Output:
	// gap: false replayed: 1
	// 2 two
	// 3 three
}
