// Command gorillahub is the load test's baseline: gorilla/websocket's own chat example shape (a hub
// goroutine per room, a read pump and a write pump per client, a 256-message send channel, slow
// clients dropped, queued messages coalesced into one frame separated by newlines), serving the
// same contract as examples/chat: POST /login sets a cookie, /ws/chat/ROOM/ is the socket, and a
// message is broadcast to the whole room, sender included.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"ginws.dev/examples/loadtest/internal/peer"
)

const (
	writeWait      = 10 * time.Second
	pongWait       = 60 * time.Second
	pingPeriod     = (pongWait * 9) / 10
	maxMessageSize = 64 << 10
)

var upgrader = websocket.Upgrader{ReadBufferSize: 1024, WriteBufferSize: 1024}

type hub struct {
	clients    map[*client]bool
	broadcast  chan []byte
	register   chan *client
	unregister chan *client
}

func newHub() *hub {
	return &hub{
		broadcast:  make(chan []byte),
		register:   make(chan *client),
		unregister: make(chan *client),
		clients:    make(map[*client]bool),
	}
}

func (h *hub) run() {
	for {
		select {
		case c := <-h.register:
			h.clients[c] = true
		case c := <-h.unregister:
			if _, ok := h.clients[c]; ok {
				delete(h.clients, c)
				close(c.send)
			}
		case message := <-h.broadcast:
			for c := range h.clients {
				select {
				case c.send <- message:
				default:
					close(c.send)
					delete(h.clients, c)
				}
			}
		}
	}
}

type client struct {
	hub  *hub
	conn *websocket.Conn
	send chan []byte
}

func (c *client) readPump() {
	defer func() {
		c.hub.unregister <- c
		c.conn.Close()
	}()
	c.conn.SetReadLimit(maxMessageSize)
	c.conn.SetReadDeadline(time.Now().Add(pongWait))
	c.conn.SetPongHandler(func(string) error { c.conn.SetReadDeadline(time.Now().Add(pongWait)); return nil })
	for {
		_, message, err := c.conn.ReadMessage()
		if err != nil {
			return
		}
		message = bytes.TrimSpace(bytes.ReplaceAll(message, []byte{'\n'}, []byte{' '}))
		c.hub.broadcast <- message
	}
}

func (c *client) writePump() {
	ticker := time.NewTicker(pingPeriod)
	defer func() {
		ticker.Stop()
		c.conn.Close()
	}()
	for {
		select {
		case message, ok := <-c.send:
			c.conn.SetWriteDeadline(time.Now().Add(writeWait))
			if !ok {
				c.conn.WriteMessage(websocket.CloseMessage, []byte{})
				return
			}
			w, err := c.conn.NextWriter(websocket.TextMessage)
			if err != nil {
				return
			}
			w.Write(message)
			n := len(c.send)
			for i := 0; i < n; i++ {
				w.Write([]byte{'\n'})
				w.Write(<-c.send)
			}
			if err := w.Close(); err != nil {
				return
			}
		case <-ticker.C:
			c.conn.SetWriteDeadline(time.Now().Add(writeWait))
			if err := c.conn.WriteMessage(websocket.PingMessage, nil); err != nil {
				return
			}
		}
	}
}

type rooms struct {
	mu   sync.Mutex
	hubs map[string]*hub
}

func (r *rooms) get(name string) *hub {
	r.mu.Lock()
	defer r.mu.Unlock()
	h := r.hubs[name]
	if h == nil {
		h = newHub()
		r.hubs[name] = h
		go h.run()
	}
	return h
}

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "listen on `host:port`")
	compress := flag.Bool("compress", false, "negotiate permessage-deflate (EnableCompression: gorilla compresses each message once per connection)")
	flag.Parse()
	upgrader.EnableCompression = *compress
	rs := &rooms{hubs: map[string]*hub{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /ws/chat/{room}/", func(w http.ResponseWriter, r *http.Request) {
		if !peer.SignedIn(w, r) {
			return
		}
		conn, err := upgrader.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		c := &client{hub: rs.get(strings.TrimSuffix(r.PathValue("room"), "/")), conn: conn, send: make(chan []byte, 256)}
		c.hub.register <- c
		go c.writePump()
		go c.readPump()
	})
	peer.Routes(mux, nil)
	fmt.Fprintln(os.Stderr, peer.Serve(*addr, mux))
	os.Exit(1)
}
