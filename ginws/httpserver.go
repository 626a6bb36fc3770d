package ginws

import (
	"net/http"
	"time"
)

// HTTPServer returns the http.Server ginws recommends for serving handler (a Gin engine with
// WebSocket routes mounted on s) on addr:
//
//   - MaxHeaderBytes 32 KiB: a larger header block gets 431 Request Header Fields Too Large
//     before any handler runs (net/http's default, 1 MiB, would let every anonymous socket pin up
//     to a megabyte of headers in its Scope);
//   - ReadHeaderTimeout 10 s and ReadTimeout 30 s against slow headers and slow bodies; an
//     upgraded WebSocket is not cut by them: Accept clears net/http's deadlines, and the socket's
//     own keepalive (Config.PingInterval, PingTimeout) takes over;
//   - IdleTimeout 120 s for keep-alive connections idle between requests;
//   - s.OnShutdown registered, so that srv.Shutdown(ctx) also closes every WebSocket with 1001.
//
// Follow Shutdown with s.Wait(ctx) to wait for the sockets' Disconnect handlers:
//
//	srv := ws.HTTPServer(":8000", r)
//	go srv.ListenAndServe()
//	...
//	_ = srv.Shutdown(ctx) // HTTP requests finish; sockets get 1001
//	_ = ws.Wait(ctx)      // every Disconnect has returned
//
// WriteTimeout is left at zero: it would cut streaming responses (server-sent events, long
// downloads); set it on the returned server if the app has none. Any field may be changed before
// the server starts.
func (s *Server) HTTPServer(addr string, handler http.Handler) *http.Server {
	srv := &http.Server{
		Addr:              addr,
		Handler:           handler,
		MaxHeaderBytes:    32 << 10,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		IdleTimeout:       120 * time.Second,
	}
	srv.RegisterOnShutdown(s.OnShutdown)
	return srv
}
