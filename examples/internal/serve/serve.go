// Package serve runs an example app the way a production Gin app with ginws should run:
// an http.Server whose shutdown also closes every WebSocket with 1001 and waits for their
// Disconnect handlers (http.Server.Shutdown does neither for hijacked connections).
package serve

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/gin-gonic/gin"

	"ginws.dev/ginws"
)

// Run serves h on addr until SIGINT or SIGTERM, then shuts down HTTP and ws within 10 s.
func Run(addr string, h http.Handler, ws *ginws.Server, log *slog.Logger) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	srv := ws.HTTPServer(addr, h) // the recommended limits, and sockets closed on Shutdown
	log.Info("listening", "url", "http://"+ln.Addr().String()+"/")

	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	select {
	case err := <-errc:
		return err
	case s := <-sig:
		log.Info("shutting down", "signal", s.String())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err = srv.Shutdown(ctx) // sockets get 1001 through ws.OnShutdown
	if werr := ws.Shutdown(ctx); err == nil {
		err = werr
	}
	return err
}

// Logger returns the examples' logger: text on stderr at info level. It also puts Gin in release
// mode (unless GIN_MODE says otherwise), as an app in production would be.
func Logger() *slog.Logger {
	if os.Getenv("GIN_MODE") == "" {
		gin.SetMode(gin.ReleaseMode)
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
}
