// Command chat is the Django Channels tutorial's chat, on Gin and ginws: rooms, a page where
// everyone in a room sees everyone's messages, sign-in through an ordinary HTTP view that stores
// the user in a gorilla/sessions session, and a WebSocket that refuses anonymous users with 403.
//
//	go run ./examples/chat -addr 127.0.0.1:8000
//
// Then open http://127.0.0.1:8000/, sign in, and open a room in two tabs.
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

	"ginws.dev/examples/internal/serve"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8000", "listen on `host:port`")
	secret := flag.String("secret", "", "session signing key, hex (default: random per run)")
	debug := flag.Bool("debug", false, "serve /debug/stats and /debug/pprof/ (goroutines, heap, connections)")
	flag.Parse()

	key, err := sessionKey(*secret)
	if err != nil {
		fmt.Fprintln(os.Stderr, "chat:", err)
		os.Exit(2)
	}
	log := serve.Logger()
	app := NewApp(Options{SessionKey: key, Debug: *debug, Logger: log})
	if err := serve.Run(*addr, app.Handler(), app.WS, log); err != nil {
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
