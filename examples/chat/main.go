// Command chat is the Django Channels tutorial's chat, on Gin and ginws: rooms, a page where
// everyone in a room sees everyone's messages, sign-in through an ordinary HTTP view that stores
// the user in a gorilla/sessions session, and a WebSocket that refuses anonymous users with 403.
//
//	go run ./examples/chat -addr 127.0.0.1:8000
//
// Then open http://127.0.0.1:8000/, sign in, and open a room in two tabs.
//
// With -layer redis://127.0.0.1:6379/0 several chat processes share rooms through Redis (and with
// Django Channels processes using channels_redis on the same Redis and prefix):
//
//	go run ./examples/chat -addr 127.0.0.1:8001 -layer redis://127.0.0.1:6379/0 -secret $KEY
//	go run ./examples/chat -addr 127.0.0.1:8002 -layer redis://127.0.0.1:6379/0 -secret $KEY
//
// The contract load tools rely on: POST /login with form field "username" sets the session
// cookie; GET /ws/chat/ROOM/ (with or without the trailing slash) is the socket; a client sends
// {"message": "..."} and every member of ROOM, the sender included, receives
// {"message": "...", "user": "..."}.
package main

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"os"

	"ginws.dev/examples/internal/layerflag"
	"ginws.dev/examples/internal/serve"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8000", "listen on `host:port`")
	secret := flag.String("secret", "", "session signing key, hex (default: random per run)")
	debug := flag.Bool("debug", false, "serve /debug/stats and /debug/pprof/ (goroutines, heap, connections)")
	layerFlag := flag.String("layer", "memory", layerflag.Usage)
	flag.Parse()

	key, err := sessionKey(*secret)
	if err != nil {
		fmt.Fprintln(os.Stderr, "chat:", err)
		os.Exit(2)
	}
	log := serve.Logger()
	lay, closeLayer, err := layerflag.Parse(*layerFlag, log)
	if err != nil {
		fmt.Fprintln(os.Stderr, "chat:", err)
		os.Exit(2)
	}
	app := NewApp(Options{SessionKey: key, Layer: lay, Debug: *debug, Logger: log})
	err = serve.Run(*addr, app.Handler(), app.WS, log)
	if cerr := closeLayer(); err == nil {
		err = cerr
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "chat:", err)
		os.Exit(1)
	}
}

func sessionKey(secret string) ([]byte, error) {
	if secret == "" {
		b := make([]byte, 32)
		_, err := rand.Read(b)
		return b, err
	}
	b, err := hex.DecodeString(secret)
	if err != nil || len(b) < 32 {
		return nil, errors.New("-secret must be at least 32 bytes, hex-encoded")
	}
	return b, nil
}
