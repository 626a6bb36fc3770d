// Command melodychat is the load test's second peer: olahol/melody's own chat example (broadcast
// to the sessions on the same path) serving the contract of examples/chat.
package main

import (
	"flag"
	"fmt"
	"net/http"
	"os"

	"github.com/olahol/melody"

	"ginws.dev/examples/loadtest/internal/peer"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "listen on `host:port`")
	flag.Parse()
	m := melody.New()
	m.Config.MaxMessageSize = 64 << 10
	m.HandleMessage(func(s *melody.Session, msg []byte) {
		_ = m.BroadcastFilter(msg, func(q *melody.Session) bool {
			return q.Request.URL.Path == s.Request.URL.Path
		})
	})
	mux := http.NewServeMux()
	mux.HandleFunc("GET /ws/chat/{room}/", func(w http.ResponseWriter, r *http.Request) {
		if !peer.SignedIn(w, r) {
			return
		}
		_ = m.HandleRequest(w, r)
	})
	peer.Routes(mux, func() any { return map[string]int{"sessions": m.Len()} })
	fmt.Fprintln(os.Stderr, peer.Serve(*addr, mux))
	os.Exit(1)
}
