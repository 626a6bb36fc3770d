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
