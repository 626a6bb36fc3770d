// Package debugstats serves the /debug/stats and /debug/gc endpoints the load tool reads, with the
// same fields as examples/chat's -debug endpoints.
package debugstats

import (
	"encoding/json"
	"net/http"
	"net/http/pprof"
	"runtime"
)

// Register adds the endpoints to mux; extra, if set, adds a "server" field.
func Register(mux *http.ServeMux, extra func() any) {
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
