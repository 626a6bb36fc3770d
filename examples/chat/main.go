// Command chat is the Django Channels tutorial's chat, on Gin and ginws: rooms, a page where
// everyone in a room sees everyone's messages, sign-in through an ordinary HTTP view that stores
// the user in a gorilla/sessions session, and a WebSocket that refuses anonymous users with 403.
//
//	go run ./examples/chat -addr 127.0.0.1:8000
//
// Then open http://127.0.0.1:8000/, sign in, and open a room in two tabs.
//
// Sign-ins survive a restart: the session cookie is signed with a key generated on the first run
// and kept in a file only you can read (its path is logged at startup; -secret gives a key instead).
//
// With -layer redis://127.0.0.1:6379/0 several chat processes share rooms through Redis (and with
// Django Channels processes using channels_redis on the same Redis and prefix). Processes of one
// user on one machine share the key file; on several machines give them the same -secret:
//
//	go run ./examples/chat -addr 127.0.0.1:8001 -layer redis://127.0.0.1:6379/0
//	go run ./examples/chat -addr 127.0.0.1:8002 -layer redis://127.0.0.1:6379/0
//
// In production, name the hosts it answers to and limit what one client may do, for example
//
//	go run ./examples/chat -hosts chat.example.com -msg-rate 20 -msg-burst 50 -conns-per-ip 20 -conns-per-user 5 -handshakes-per-ip 2
//
// Signing out closes that session's sockets on every process (close code 4001).
//
// The contract load tools rely on: POST /login with form field "username" sets the session
// cookie; GET /ws/chat/ROOM/ (with or without the trailing slash) is the socket; a client sends
// {"message": "..."} and every member of ROOM, the sender included, receives
// {"message": "...", "user": "...", "id": "..."}. The id is the message's position in the room's
// history: /ws/chat/ROOM/?since=ID replays the messages after it, then goes live (the first frame
// is {"event": "history-gap"} when the history no longer reaches back to ID). GET
// /events/chat/ROOM/ (signed in) streams the same JSON as server-sent events, and resumes from
// Last-Event-ID.
package main

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"ginws.dev/ginws/redislayer"

	"ginws.dev/examples/internal/layerflag"
	"ginws.dev/examples/internal/serve"
	"ginws.dev/ginws"
	"ginws.dev/ginws/layer"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8000", "listen on `host:port`")
	secret := flag.String("secret", "", "session signing key, hex, at least 32 bytes (default: a key generated once and kept in the user's config directory)")
	debug := flag.Bool("debug", false, "serve /debug/stats and /debug/pprof/ (goroutines, heap, connections)")
	layerFlag := flag.String("layer", "memory", layerflag.Usage)
	presenceTTL := flag.Duration("presence-ttl", redislayer.DefaultPresenceTTL, "with a Redis layer: how soon the users of a process that died (killed, cut off) leave their rooms (at least 1s)")
	presence := flag.Bool("presence", true, "show who is in each room (false: the plain chat, as the load tool compares it with peers)")
	history := flag.Bool("history", true, "keep each room's recent messages, so that pages resume where they stopped (?since=, Last-Event-ID); false for load comparisons")
	compress := flag.Bool("compress", false, "negotiate permessage-deflate with clients that offer it (room messages are compressed once for all members)")
	metricsOn := flag.Bool("metrics", false, "serve Prometheus metrics at /metrics")
	hosts := flag.String("hosts", "", "comma-separated host names the server answers to, e.g. `chat.example.com,.example.org` (default: any); other Host headers get 400")
	var lim ginws.Limits
	flag.Float64Var(&lim.Messages.PerSecond, "msg-rate", 0, "messages per second a client may send on average (0: no limit); over it the socket is closed with 1008")
	flag.IntVar(&lim.Messages.Burst, "msg-burst", 0, "messages a client may send at once, with -msg-rate (default 1)")
	flag.BoolVar(&lim.DropMessages, "msg-drop", false, "with -msg-rate, drop the messages over the budget instead of closing the socket")
	flag.IntVar(&lim.ConnsPerIP, "conns-per-ip", 0, "sockets open at once from one client address (0: no cap); more get HTTP 429")
	flag.IntVar(&lim.ConnsPerUser, "conns-per-user", 0, "sockets open at once for one signed-in user (0: no cap); more get HTTP 429")
	flag.Float64Var(&lim.HandshakesPerIP.PerSecond, "handshakes-per-ip", 0, "socket handshakes per second from one client address (0: no limit), in bursts of up to 10; more get HTTP 429")
	flag.Parse()
	lim.HandshakesPerIP.Burst = 10

	log := serve.Logger()
	key, err := sessionKey(*secret, defaultKeyFile(), log)
	if err != nil {
		fmt.Fprintln(os.Stderr, "chat:", err)
		os.Exit(2)
	}
	var rules []layer.HistoryRule
	if *history {
		rules = append(rules, History)
	}
	lay, closeLayer, err := layerflag.Parse(*layerFlag, log, rules, func(cfg *redislayer.Config) { cfg.PresenceTTL = *presenceTTL })
	if err != nil {
		fmt.Fprintln(os.Stderr, "chat:", err)
		os.Exit(2)
	}
	var hostList []string
	if *hosts != "" {
		hostList = strings.Split(*hosts, ",")
	}
	app := NewApp(Options{SessionKey: key, Layer: lay, Debug: *debug, Logger: log, Limits: lim, Hosts: hostList, Metrics: *metricsOn, NoPresence: !*presence, Compress: *compress})
	err = serve.Run(*addr, app.Handler(), app.WS, log)
	if cerr := closeLayer(); err == nil {
		err = cerr
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "chat:", err)
		os.Exit(1)
	}
}

// sessionKey returns the key that signs the session cookie: -secret when given, else the key kept
// in keyFile.
//
// Someone trying the example restarts it often — after every edit — and expects to stay signed
// in, as with Django's SECRET_KEY. A key made up on each run would turn every open page's cookie
// into garbage at each restart. So the default key is generated once, with 0600 permissions, and
// every later run (and every chat process of the same user on this machine) reads it back. Where
// no file can be kept (keyFile is "", or the directory is read-only) the key is random for this
// run, with a warning that a restart signs everybody out.
func sessionKey(secret, keyFile string, log *slog.Logger) ([]byte, error) {
	if secret != "" {
		b, err := hex.DecodeString(secret)
		if err != nil || len(b) < 32 {
			return nil, errors.New("-secret must be at least 32 bytes, hex-encoded")
		}
		return b, nil
	}
	if keyFile == "" {
		return randomKey(log, errors.New("no user config directory"))
	}
	key, err := loadOrCreateKey(keyFile)
	switch {
	case err == nil:
		log.Info("session key", "file", keyFile)
		return key, nil
	case errors.Is(err, errNotAKey):
		return nil, err // not ours to overwrite: its owner decides
	}
	return randomKey(log, err)
}

func randomKey(log *slog.Logger, why error) ([]byte, error) {
	log.Warn("session key: random for this run, so a restart signs everybody out (-secret gives a lasting one)", "error", why)
	key := make([]byte, 32)
	_, err := rand.Read(key)
	return key, err
}

// defaultKeyFile is where the default key is kept: ginws/chat-session-key in the user's config
// directory ($XDG_CONFIG_HOME or ~/.config on Linux, ~/Library/Application Support on macOS,
// %AppData% on Windows), or "" if there is none.
func defaultKeyFile() string {
	dir, err := os.UserConfigDir()
	if err != nil {
		return ""
	}
	return filepath.Join(dir, "ginws", "chat-session-key")
}

var errNotAKey = errors.New("not a session key (64 hex digits)")

// loadOrCreateKey reads the hex key kept in path, or creates it. A new key is written to a
// temporary file and linked into place, which fails if path exists: processes starting at the
// same time all end up with the one key that was linked first, never with a half-written one.
func loadOrCreateKey(path string) ([]byte, error) {
	key, err := readKey(path)
	if !errors.Is(err, fs.ErrNotExist) {
		return key, err
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	key = make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, err
	}
	tmp, err := os.CreateTemp(dir, ".chat-session-key-*") // mode 0600
	if err != nil {
		return nil, err
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.WriteString(hex.EncodeToString(key) + "\n")
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, err
	}
	if err := os.Link(tmp.Name(), path); err != nil && !errors.Is(err, fs.ErrExist) {
		return nil, err
	}
	return readKey(path) // ours, or the one another process linked first
}

func readKey(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	key, err := hex.DecodeString(strings.TrimSpace(string(b)))
	if err != nil || len(key) < 32 {
		return nil, fmt.Errorf("%s: %w; delete it to have a new one made", path, errNotAKey)
	}
	return key, nil
}
