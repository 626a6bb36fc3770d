// Command wsclient is a small WebSocket client for trying the examples from a terminal: it prints
// every message the server sends, one a line, and sends every line typed on stdin as a text
// message. End with Ctrl-D (or Ctrl-C): it closes the connection with 1000 and waits for the
// server's answer.
//
//	go run ./examples/wsclient 'ws://127.0.0.1:8002/ws/notify?user=ada'
//	go run ./examples/wsclient -H "Authorization: Bearer $TOKEN" ws://127.0.0.1:8003/ws/notifications
//	go run ./examples/wsclient -protocol bearer -protocol "$TOKEN" ws://127.0.0.1:8003/ws/notifications
//
// Like any non-browser client it sends no Origin header unless -origin asks for one. A refused
// handshake prints the HTTP status the server answered (403, 401...); the close code the
// connection ends with goes to stderr, and the exit status is 0 only for 1000.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/gorilla/websocket"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// repeated is a flag that may be given several times.
type repeated []string

func (r *repeated) String() string     { return strings.Join(*r, ", ") }
func (r *repeated) Set(v string) error { *r = append(*r, v); return nil }

const closeWait = 5 * time.Second // how long to wait for the server to answer a close

// run is the client; it returns the exit status. ctx ending closes the connection like EOF.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	flags := flag.NewFlagSet("wsclient", flag.ContinueOnError)
	flags.SetOutput(stderr)
	var headers, protocols repeated
	flags.Var(&headers, "H", "add a handshake `header` (\"Name: value\"); repeatable")
	flags.Var(&protocols, "protocol", "offer a `subprotocol`; repeatable, offered in order")
	origin := flags.String("origin", "", "send this `Origin` (default: none, like any non-browser client)")
	flags.Usage = func() {
		fmt.Fprintln(stderr, "usage: wsclient [-H 'Name: value']... [-protocol p]... [-origin URL] ws://HOST/PATH")
		flags.PrintDefaults()
	}
	if err := flags.Parse(args); err != nil {
		return 2
	}
	if flags.NArg() != 1 {
		flags.Usage()
		return 2
	}
	h := http.Header{}
	for _, kv := range headers {
		name, value, ok := strings.Cut(kv, ":")
		if !ok {
			fmt.Fprintf(stderr, "wsclient: -H %q: want \"Name: value\"\n", kv)
			return 2
		}
		h.Add(strings.TrimSpace(name), strings.TrimSpace(value))
	}
	if *origin != "" {
		h.Set("Origin", *origin)
	}

	dialer := websocket.Dialer{HandshakeTimeout: 10 * time.Second, Subprotocols: protocols}
	conn, resp, err := dialer.DialContext(ctx, flags.Arg(0), h)
	if err != nil {
		if resp != nil && resp.StatusCode != http.StatusSwitchingProtocols {
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
			resp.Body.Close()
			fmt.Fprintf(stderr, "wsclient: handshake refused: HTTP %s %s\n", resp.Status, strings.TrimSpace(string(body)))
			return 1
		}
		fmt.Fprintln(stderr, "wsclient:", err)
		return 1
	}
	defer conn.Close()
	if p := conn.Subprotocol(); p != "" {
		fmt.Fprintf(stderr, "connected (subprotocol %q)\n", p)
	} else {
		fmt.Fprintln(stderr, "connected")
	}

	closed := make(chan int, 1) // the close code, once the connection has ended
	go func() {
		for {
			op, data, err := conn.ReadMessage()
			if err != nil {
				var ce *websocket.CloseError
				if errors.As(err, &ce) {
					fmt.Fprintf(stderr, "closed: %d %s\n", ce.Code, ce.Text)
					closed <- ce.Code
				} else {
					fmt.Fprintln(stderr, "connection lost:", err)
					closed <- websocket.CloseAbnormalClosure
				}
				return
			}
			if op == websocket.BinaryMessage {
				fmt.Fprintf(stdout, "[binary, %d bytes] %x\n", len(data), data)
			} else {
				fmt.Fprintf(stdout, "%s\n", data)
			}
		}
	}()

	lines := make(chan string)
	done := make(chan struct{})
	defer close(done)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(stdin)
		for sc.Scan() {
			select {
			case lines <- sc.Text():
			case <-done:
				return
			}
		}
	}()

	status := func(code int) int {
		if code == websocket.CloseNormalClosure {
			return 0
		}
		return 1
	}
	for {
		select {
		case line, ok := <-lines:
			if ok {
				if err := conn.WriteMessage(websocket.TextMessage, []byte(line)); err != nil {
					fmt.Fprintln(stderr, "wsclient:", err)
					conn.Close() // ends the reader too
					<-closed
					return 1
				}
				continue
			}
		case <-ctx.Done():
		case code := <-closed:
			return status(code)
		}
		// End of input, or interrupted: close normally and wait for the server's answer.
		msg := websocket.FormatCloseMessage(websocket.CloseNormalClosure, "")
		_ = conn.WriteControl(websocket.CloseMessage, msg, time.Now().Add(closeWait))
		select {
		case code := <-closed:
			return status(code)
		case <-time.After(closeWait):
			fmt.Fprintln(stderr, "wsclient: the server did not answer the close")
			return 1
		}
	}
}
