package redisstore_test

import (
	"log"

	"github.com/gin-gonic/gin"
	"github.com/redis/rueidis"

	"ginws.dev/ginws"
	"ginws.dev/ginws/redislayer"
	"ginws.dev/ginws/yjs"
	"ginws.dev/ginws/yjs/redisstore"
)

// Several processes serving the same Yjs rooms: the channel layer carries the live traffic
// between them, the Redis store keeps the documents.
func ExampleNew() {
	lay, err := redislayer.New(redislayer.Config{Hosts: []string{"redis://127.0.0.1:6379/0"}})
	if err != nil {
		log.Fatal(err)
	}
	client, err := rueidis.NewClient(rueidis.ClientOption{InitAddress: []string{"127.0.0.1:6379"}})
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()

	ws := ginws.New(ginws.Config{Layer: lay, ReadLimit: 8 << 20, OutboundLimit: 64 << 20})
	ys := yjs.New(ws, yjs.Config{Store: redisstore.New(client, "myapp:yjs:")})
	r := gin.New()
	r.GET("/yjs/*room", ws.Mount(ys.Consumer))
	_ = r // r.Run(":8080")
}
