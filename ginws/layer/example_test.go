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
