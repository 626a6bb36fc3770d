// Command centrifugechat is the load test's centrifuge peer: centrifugal/centrifuge's tutorial chat
// (a Node with the default configuration and its in-memory broker, clients publishing into
// channels) serving the contract of examples/chat as closely as centrifuge's model allows.
//
//   - POST /login sets the session cookie; /ws/chat/ROOM/ is the socket, refused with 403 without
//     the cookie. The cookie's user is the connection's centrifuge Credentials.
//   - The socket speaks centrifuge's JSON client protocol: the client sends a connect command,
//     subscribes to the channel ROOM (the room of the socket's path; any other is refused), and
//     publishes {"message": ...} into it.
//   - The publish handler attaches the publisher's ClientInfo, as Centrifugo does for client
//     publications, so every subscriber of ROOM, the sender included, receives the publication
//     {"data": {"message": ...}, "info": {"user": USER, "client": ID}}: the user is the server's,
//     not the client's word, as in the contract.
package main

import (
	"context"
	"flag"
	"fmt"
	"net/http"
	"os"

	"github.com/centrifugal/centrifuge"

	"ginws.dev/examples/loadtest/internal/peer"
)

// roomKey keys the socket's room in the connection's context.
type roomKey struct{}

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "listen on `host:port`")
	flag.Parse()
	node, err := centrifuge.New(centrifuge.Config{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	node.OnConnect(func(c *centrifuge.Client) {
		room, _ := c.Context().Value(roomKey{}).(string)
		c.OnSubscribe(func(e centrifuge.SubscribeEvent, cb centrifuge.SubscribeCallback) {
			if e.Channel != room {
				cb(centrifuge.SubscribeReply{}, centrifuge.ErrorPermissionDenied)
				return
			}
			cb(centrifuge.SubscribeReply{}, nil)
		})
		c.OnPublish(func(e centrifuge.PublishEvent, cb centrifuge.PublishCallback) {
			if e.Channel != room {
				cb(centrifuge.PublishReply{}, centrifuge.ErrorPermissionDenied)
				return
			}
			cb(centrifuge.PublishReply{Options: centrifuge.PublishOptions{ClientInfo: e.ClientInfo}}, nil)
		})
	})
	if err := node.Run(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	ws := centrifuge.NewWebsocketHandler(node, centrifuge.WebsocketConfig{})
	mux := http.NewServeMux()
	mux.HandleFunc("GET /ws/chat/{room}/", func(w http.ResponseWriter, r *http.Request) {
		if !peer.SignedIn(w, r) {
			return
		}
		session, _ := r.Cookie("session")
		ctx := centrifuge.SetCredentials(r.Context(), &centrifuge.Credentials{UserID: session.Value})
		ctx = context.WithValue(ctx, roomKey{}, r.PathValue("room"))
		ws.ServeHTTP(w, r.WithContext(ctx))
	})
	peer.Routes(mux, func() any { return map[string]int{"clients": node.Hub().NumClients()} })
	fmt.Fprintln(os.Stderr, peer.Serve(*addr, mux))
	os.Exit(1)
}
