package yjs_test

import (
	"context"
	"fmt"
	"time"

	"github.com/gin-gonic/gin"

	"ginws.dev/ginws"
	"ginws.dev/ginws/yjs"
)

// A Gin app serving Yjs rooms to y-websocket clients: new WebsocketProvider("ws://host/yjs",
// "notes/2024", ydoc) joins the room "notes/2024".
func Example() {
	ws := ginws.New(ginws.Config{}) // Yjs connections get limits sized for documents
	ys := yjs.New(ws, yjs.Config{
		Authorize: func(ctx context.Context, s *ginws.Scope, room string) (yjs.Access, error) {
			if s.QueryValue("view") == "1" {
				return yjs.ReadOnly, nil
			}
			return yjs.ReadWrite, nil
		},
	})
	r := gin.New()
	r.GET("/yjs/*room", ws.Mount(ys.Consumer))

	// ... http.ListenAndServe(addr, r) ...

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = ws.Shutdown(ctx) // closes the connections
	_ = ys.Close(ctx)    // saves the rooms
	fmt.Println(yjs.GroupName("notes/2024")[:4])
	// Output: yjs.
}
