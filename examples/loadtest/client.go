package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

// Client is one chat member. Its reader counts the messages of its room and checks their order.
type Client struct {
	room   *Room
	conn   *websocket.Conn
	recv   atomic.Int64 // messages received in order
	bad    atomic.Int64 // messages out of order, duplicated, or unparsable
	probed atomic.Bool  // a probe (seq 0, see settleRooms) arrived
	done   chan struct{}

	lastSeq   int64
	mu        sync.Mutex
	latencies []time.Duration // only when the room records latency

	wire wire       // the protocol the socket speaks
	cf   *cfSession // centrifuge's client protocol state, with wire == wireCentrifuge
}

// wire is the protocol a client speaks on its socket. Every server but centrifuge speaks the chat
// contract itself; centrifuge speaks its own client protocol, which centrifuge.go adapts to the
// contract's messages, so that the checks below see the same messages from every server.
type wire int

const (
	wireChat       wire = iota // {"message": ...} out; {"message": ..., "user": ...} in
	wireCentrifuge             // centrifuge's JSON client protocol (centrifuge.go)

	// wireDeflate, added to wireChat, makes the client offer permessage-deflate (a server named
	// with "+z": see buildTargets).
	wireDeflate wire = 1 << 8
)

// wireIn counts the bytes every client has read from its socket (frames as they arrive,
// compressed or not): the wire bytes per delivery of the fan-out report.
var wireIn atomic.Int64

type countingConn struct{ net.Conn }

func (c countingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	wireIn.Add(int64(n))
	return n, err
}

func countingDial(ctx context.Context, network, addr string) (net.Conn, error) {
	var d net.Dialer
	nc, err := d.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	return countingConn{nc}, nil
}

// Room groups the clients of one chat room; its sender waits on cond for the slowest member.
type Room struct {
	Name    string
	Clients []*Client
	sent    atomic.Int64
	record  bool

	mu      sync.Mutex
	cond    *sync.Cond
	waiting atomic.Bool
}

func newRoom(name string, record bool) *Room {
	r := &Room{Name: name, record: record}
	r.cond = sync.NewCond(&r.mu)
	return r
}

// probed reports whether every member has received a probe (see settleRooms).
func (r *Room) probed() bool {
	for _, c := range r.Clients {
		if !c.probed.Load() {
			return false
		}
	}
	return true
}

// minRecv is what the slowest member has received.
func (r *Room) minRecv() int64 {
	m := int64(-1)
	for _, c := range r.Clients {
		if n := c.recv.Load(); m < 0 || n < m {
			m = n
		}
	}
	return m
}

// waitFor blocks until every member has received at least n messages, or ctx ends.
func (r *Room) waitFor(ctx context.Context, n int64) bool {
	if r.minRecv() >= n {
		return true
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.waiting.Store(true)
	defer r.waiting.Store(false)
	for r.minRecv() < n {
		if ctx.Err() != nil {
			return false
		}
		r.cond.Wait()
	}
	return true
}

func (r *Room) wake() {
	if r.waiting.Load() {
		r.mu.Lock()
		r.cond.Broadcast()
		r.mu.Unlock()
	}
}

// login signs in through POST /login and returns the session cookie header.
func login(ctx context.Context, hc *http.Client, addr, name string) (string, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+addr+"/login",
		strings.NewReader(url.Values{"username": {name}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := hc.Do(req)
	if err != nil {
		return "", err
	}
	resp.Body.Close()
	var parts []string
	for _, c := range resp.Cookies() {
		parts = append(parts, c.Name+"="+c.Value)
	}
	if len(parts) == 0 {
		return "", fmt.Errorf("login: %s and no cookie", resp.Status)
	}
	return strings.Join(parts, "; "), nil
}

var (
	dialer  = websocket.Dialer{HandshakeTimeout: 30 * time.Second, ReadBufferSize: 1024, WriteBufferSize: 1024, NetDialContext: countingDial}
	zdialer = websocket.Dialer{HandshakeTimeout: 30 * time.Second, ReadBufferSize: 1024, WriteBufferSize: 1024, NetDialContext: countingDial, EnableCompression: true}
)

// connect signs a client in and opens its socket; with wireCentrifuge, it also connects and
// subscribes to the room's channel in centrifuge's protocol.
func connect(ctx context.Context, hc *http.Client, addr string, room *Room, name string, w wire) (*Client, error) {
	cookie, err := login(ctx, hc, addr, name)
	if err != nil {
		return nil, err
	}
	h := http.Header{"Cookie": {cookie}}
	d := &dialer
	if w&wireDeflate != 0 {
		d, w = &zdialer, w&^wireDeflate
	}
	conn, resp, err := d.DialContext(ctx, "ws://"+addr+"/ws/chat/"+room.Name+"/", h)
	if err != nil {
		if resp != nil {
			return nil, fmt.Errorf("dial: %v (HTTP %d)", err, resp.StatusCode)
		}
		return nil, fmt.Errorf("dial: %w", err)
	}
	if d == &zdialer && resp.Header.Get("Sec-WebSocket-Extensions") == "" {
		_ = conn.Close()
		return nil, fmt.Errorf("dial: the server did not negotiate permessage-deflate")
	}
	c := &Client{room: room, conn: conn, done: make(chan struct{}), wire: w}
	if w == wireCentrifuge {
		if err := c.centrifugeJoin(); err != nil {
			_ = conn.Close()
			return nil, err
		}
	}
	go c.read()
	return c, nil
}

var (
	messageKey    = []byte(`"message":"`)
	presenceFrame = []byte(`{"event":`)
)

// read counts messages. A frame may hold several newline-separated messages (the gorilla hub
// coalesces them).
func (c *Client) read() {
	defer close(c.done)
	for {
		_, data, err := c.conn.ReadMessage()
		if err != nil {
			return
		}
		now := time.Now()
		for len(data) > 0 {
			line := data
			if i := bytes.IndexByte(data, '\n'); i >= 0 {
				line, data = data[:i], data[i+1:]
			} else {
				data = nil
			}
			if bytes.HasPrefix(line, presenceFrame) {
				continue // who is here (the chat with presence): not a room message
			}
			if c.wire == wireCentrifuge {
				var pub bool
				if line, pub = c.centrifugeLine(line); !pub {
					continue
				}
			}
			seq, sentAt, ok := parseMessage(line)
			if ok && seq == 0 {
				c.probed.Store(true) // not a room message: settleRooms' probe
				continue
			}
			if !ok || seq != c.lastSeq+1 {
				c.bad.Add(1)
				if ok {
					c.lastSeq = seq
				}
				continue
			}
			c.lastSeq = seq
			if c.room.record {
				c.mu.Lock()
				c.latencies = append(c.latencies, now.Sub(time.Unix(0, sentAt)))
				c.mu.Unlock()
			}
			c.recv.Add(1)
			c.room.wake()
		}
	}
}

// The sender's text is "SEQ:UNIXNANO:padding".
func formatMessage(seq int64, pad string) []byte {
	return []byte(`{"message":"` + strconv.FormatInt(seq, 10) + ":" + strconv.FormatInt(time.Now().UnixNano(), 10) + ":" + pad + `"}`)
}

func parseMessage(line []byte) (seq, sentAt int64, ok bool) {
	i := bytes.Index(line, messageKey)
	if i < 0 {
		return 0, 0, false
	}
	rest := line[i+len(messageKey):]
	parts := bytes.SplitN(rest, []byte{':'}, 3)
	if len(parts) < 3 {
		return 0, 0, false
	}
	seq, err1 := strconv.ParseInt(string(parts[0]), 10, 64)
	sentAt, err2 := strconv.ParseInt(string(parts[1]), 10, 64)
	return seq, sentAt, err1 == nil && err2 == nil
}

// send writes one chat message.
func (c *Client) send(seq int64, pad string) error {
	if c.wire == wireCentrifuge {
		return c.centrifugePublish(formatMessage(seq, pad))
	}
	_ = c.conn.SetWriteDeadline(time.Now().Add(30 * time.Second))
	return c.conn.WriteMessage(websocket.TextMessage, formatMessage(seq, pad))
}

// close says goodbye and waits for the reader to end.
func (c *Client) close() {
	_ = c.conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(5*time.Second))
	select {
	case <-c.done:
	case <-time.After(5 * time.Second):
	}
	_ = c.conn.Close()
	<-c.done
}

// connectAll opens n clients spread evenly over rooms, parallel dials bounded by par. With several
// server addresses (processes of one server), the members of each room alternate between them.
func connectAll(ctx context.Context, addrs []string, w wire, rooms []*Room, n, par int, prefix string) ([]*Client, error) {
	hc := &http.Client{
		Timeout:       30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Transport:     &http.Transport{MaxIdleConnsPerHost: par},
	}
	defer hc.CloseIdleConnections()
	clients := make([]*Client, n)
	errs := make(chan error, n)
	sem := make(chan struct{}, par)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		sem <- struct{}{}
		go func(i int) {
			defer wg.Done()
			defer func() { <-sem }()
			// Member k of room r goes to process (k+r) mod len(addrs): each room is split evenly,
			// and the rooms' senders (member 0) are spread over the processes too.
			addr := addrs[(i/len(rooms)+i%len(rooms))%len(addrs)]
			c, err := connect(ctx, hc, addr, rooms[i%len(rooms)], fmt.Sprintf("%s%d", prefix, i), w)
			if err != nil {
				errs <- err
				return
			}
			clients[i] = c
		}(i)
	}
	wg.Wait()
	close(errs)
	var all []error
	for err := range errs {
		all = append(all, err)
	}
	if len(all) > 0 {
		closeAll(clients)
		return nil, fmt.Errorf("%d of %d connections failed; first: %w", len(all), n, all[0])
	}
	for _, c := range clients {
		c.room.Clients = append(c.room.Clients, c)
	}
	return clients, nil
}

func closeAll(clients []*Client) {
	var wg sync.WaitGroup
	sem := make(chan struct{}, 256)
	for _, c := range clients {
		if c == nil {
			continue
		}
		wg.Add(1)
		sem <- struct{}{}
		go func(c *Client) {
			defer wg.Done()
			defer func() { <-sem }()
			c.close()
		}(c)
	}
	wg.Wait()
}

// verify waits until every member of every room has received what its room's sender sent, and
// returns how many messages are missing (or arrived out of order) when time runs out.
// errLost reports that some member never received some message of its room.
var errLost = errors.New("messages lost")

func verify(ctx context.Context, rooms []*Room, within time.Duration) (lost int64, err error) {
	deadline := time.Now().Add(within)
	for {
		lost = 0
		var bad int64
		for _, r := range rooms {
			sent := r.sent.Load()
			for _, c := range r.Clients {
				lost += sent - c.recv.Load()
				bad += c.bad.Load()
			}
		}
		if bad > 0 {
			return lost, fmt.Errorf("%d messages arrived out of order, duplicated or garbled", bad)
		}
		if lost == 0 {
			return 0, nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return lost, errLost
		}
		time.Sleep(20 * time.Millisecond)
	}
}
