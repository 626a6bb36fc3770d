package redislayer_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"ginws.dev/ginws"
	"ginws.dev/ginws/layer"
	"ginws.dev/ginws/redislayer"
)

// A Go process and a Django process configured with the same Redis and prefix share groups: this
// group send reaches Django consumers that joined "chat_lobby" too. (Needs Redis; not run.)
func Example() {
	lay, err := redislayer.New(redislayer.Config{
		Hosts:  []string{"redis://127.0.0.1:6379/0"},
		Prefix: "asgi", // CHANNEL_LAYERS["default"]["CONFIG"]["prefix"] on the Django side
	})
	if err != nil {
		log.Fatal(err)
	}
	defer lay.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	me, err := lay.NewChannel(ctx, "")
	if err != nil {
		log.Fatal(err)
	}
	if err := lay.GroupAdd(ctx, "chat_lobby", me); err != nil {
		log.Fatal(err)
	}
	if err := lay.GroupSend(ctx, "chat_lobby", layer.Message{"type": "chat.message", "message": "hello"}); err != nil {
		log.Fatal(err)
	}
	msg, err := lay.Receive(ctx, me)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(msg.Type(), msg["message"])
}

// A server whose connections use the Redis layer: run several processes like this one behind a
// load balancer and group sends reach the clients of all of them.
func Example_server() {
	lay, err := redislayer.New(redislayer.Config{Hosts: []string{"redis://127.0.0.1:6379/0"}})
	if err != nil {
		log.Fatal(err)
	}
	defer lay.Close()
	srv := ginws.New(ginws.Config{Layer: lay})
	defer srv.Shutdown(context.Background())
}
