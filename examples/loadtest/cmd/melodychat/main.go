// Command melodychat is the load test's second peer: olahol/melody's own chat example (broadcast
// to the sessions on the same path) serving the contract of examples/chat.
package main

import (
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"

	"github.com/olahol/melody"

	"ginws.dev/examples/loadtest/internal/debugstats"
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
	mux.HandleFunc("POST /login", func(w http.ResponseWriter, r *http.Request) {
		http.SetCookie(w, &http.Cookie{Name: "session", Value: r.FormValue("username"), Path: "/"})
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("GET /ws/chat/{room}/", func(w http.ResponseWriter, r *http.Request) {
		if _, err := r.Cookie("session"); err != nil {
			http.Error(w, "sign in first", http.StatusForbidden)
			return
		}
		_ = m.HandleRequest(w, r)
	})
	debugstats.Register(mux, func() any { return map[string]int{"sessions": m.Len()} })
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Fprintf(os.Stderr, "listening url=http://%s/\n", ln.Addr())
	fmt.Fprintln(os.Stderr, http.Serve(ln, mux))
}
