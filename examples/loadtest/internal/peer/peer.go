// Package peer holds what the load tool's peer servers share: the chat contract's sign-in and
// session check, the /debug/stats and /debug/gc endpoints the tool reads (with the same fields as
// examples/chat's -debug endpoints), and serving on the address the tool asks for.
package peer

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"runtime"
)

// Routes adds POST /login (a session cookie for any username) and the debug endpoints to mux;
// extra, if set, adds a "server" field to /debug/stats.
func Routes(mux *http.ServeMux, extra func() any) {
	mux.HandleFunc("POST /login", func(w http.ResponseWriter, r *http.Request) {
		http.SetCookie(w, &http.Cookie{Name: "session", Value: r.FormValue("username"), Path: "/"})
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("GET /debug/stats", func(w http.ResponseWriter, r *http.Request) {
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		out := map[string]any{
			"goroutines": runtime.NumGoroutine(),
			"heap_alloc": m.HeapAlloc,
			"heap_inuse": m.HeapInuse,
			"sys":        m.Sys,
		}
		if extra != nil {
			out["server"] = extra()
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(out)
	})
	mux.HandleFunc("GET /debug/pprof/", pprof.Index)
	mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("GET /debug/gc", func(w http.ResponseWriter, r *http.Request) {
		runtime.GC()
		w.WriteHeader(http.StatusNoContent)
	})
}

// SignedIn refuses a socket without the session cookie with 403, as examples/chat does.
func SignedIn(w http.ResponseWriter, r *http.Request) bool {
	if _, err := r.Cookie("session"); err != nil {
		http.Error(w, "sign in first", http.StatusForbidden)
		return false
	}
	return true
}

// Serve listens on addr, announces the address the way the tool expects, and serves mux.
func Serve(addr string, mux *http.ServeMux) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "listening url=http://%s/\n", ln.Addr())
	return http.Serve(ln, mux)
}
