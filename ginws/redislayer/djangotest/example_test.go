package djangotest_test

import (
	"context"
	"fmt"
	"log"

	"ginws.dev/ginws/layer"
	"ginws.dev/ginws/redislayer/djangotest"
)

// Typed JSON keeps a float a float and bytes bytes, so a test can tell what crossed the layer.
func ExampleMarshalTyped() {
	b, err := djangotest.MarshalTyped(layer.Message{"type": "x", "n": 2, "f": 2.0, "raw": []byte("hi")})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(string(b))
	v, _ := djangotest.UnmarshalTyped(b)
	m := v.(map[string]any)
	fmt.Printf("%T %T %T\n", m["n"], m["f"], m["raw"])
	// Output:
	// {"f":2.0,"n":2,"raw":{"__bytes__":"aGk="},"type":"x"}
	// int64 float64 []uint8
}

// Outside tests, Run starts the project and Close stops it. A Client drives its interop consumer.
func ExampleRun() {
	ctx := context.Background()
	d, err := djangotest.Run(ctx, djangotest.Options{RedisHosts: []string{"redis://127.0.0.1:6379/4"}})
	if err != nil {
		log.Fatal(err) // wraps djangotest.ErrMissing when Django Channels is not installed
	}
	defer d.Close()

	c, err := djangotest.Dial(ctx, d.WSURL("/ws/interop/room/"), nil)
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	// The Django consumer calls channel_layer.group_send("room", {...}), then shows what it got.
	if err := c.GroupSend(ctx, "room", layer.Message{"type": "note", "text": "hi"}); err != nil {
		log.Fatal(err)
	}
	ev, err := c.Event(ctx)
	fmt.Println(ev["text"], err)
}
