// Command yjs is a collaborative text page on Gin and ginws: a shared Y.Text bound to a
// textarea, the connection status and who is here, served by ginws/yjs to the stock y-websocket
// client (bundled with yjs into web/dist/app.js, embedded in the binary).
//
//	go run ./examples/yjs -addr 127.0.0.1:8001
//
// Then open http://127.0.0.1:8001/?room=notes in two tabs and type. Any y-websocket client can
// join too: its server URL is ws://127.0.0.1:8001/yjs and the room is any name.
//
// With -require-login the page asks for a name first (a session cookie, as in examples/chat)
// and the socket refuses anonymous handshakes with 403. With -layer redis://HOST:PORT/DB,
// several processes on one Redis share their rooms: a room loaded in a second process fetches
// the document from the processes that hold it, and they relay every update to each other.
// Documents are kept in memory (per process) unless -store names a Redis database.
package main

import (
	"context"
	"crypto/rand"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"time"

	"ginws.dev/examples/internal/layerflag"
	"ginws.dev/examples/internal/serve"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8001", "listen on `host:port`")
	lay := flag.String("layer", "memory", layerflag.Usage)
	store := flag.String("store", "memory", storeUsage)
	requireLogin := flag.Bool("require-login", false, "ask for a name (session cookie) before the page and the socket")
	flag.Parse()

	log := serve.Logger()
	if err := run(*addr, *lay, *store, *requireLogin, log); err != nil {
		fmt.Fprintln(os.Stderr, "yjs:", err)
		os.Exit(1)
	}
}

func run(addr, layerSpec, storeSpec string, requireLogin bool, log *slog.Logger) error {
	lay, closeLayer, err := layerflag.Parse(layerSpec, log, nil)
	if err != nil {
		return err
	}
	defer func() {
		if err := closeLayer(); err != nil {
			log.Warn("closing the layer", "err", err)
		}
	}()
	store, closeStore, err := parseStore(storeSpec)
	if err != nil {
		return err
	}
	defer closeStore()
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return err
	}
	app := NewApp(Options{RequireLogin: requireLogin, SessionKey: key, Layer: lay, Store: store, Logger: log})
	err = serve.Run(addr, app.Handler(), app.WS, log)
	// The sockets are closed; write what the rooms still hold to the store.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if cerr := app.Yjs.Close(ctx); err == nil {
		err = cerr
	}
	return err
}
