// Package wstest tests ginws consumers the way Django Channels' WebsocketCommunicator tests
// Channels consumers — but over a real, in-process HTTP server running the app's real Gin engine,
// middleware and Mount handler, so what is tested is what runs.
//
//	srv := wstest.NewServer(t, engine)
//	comm := srv.Communicator("/ws/chat/lobby/", wstest.Jar(jar))
//	res, err := comm.Connect(ctx)            // res.Accepted, res.Subprotocol, or res.Status (403...)
//	err = comm.SendJSON(ctx, map[string]any{"message": "hi"})
//	var got map[string]any
//	err = comm.ReceiveJSON(ctx, &got)
//	err = comm.ReceiveNothing(ctx, 100*time.Millisecond)
//	err = comm.Disconnect(ctx)
//
// Every blocking method takes a context; when it has no deadline, the communicator's Timeout
// (default 5 s) applies. A Communicator is meant for one test goroutine.
package wstest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// Server is an in-process HTTP server for an app's handler (typically its *gin.Engine). It is
// closed when the test ends.
type Server struct {
	*httptest.Server
	t testing.TB
}

// NewServer starts h on a loopback port chosen by the kernel.
func NewServer(t testing.TB, h http.Handler) *Server {
	t.Helper()
	s := &Server{Server: httptest.NewServer(h), t: t}
	t.Cleanup(s.Close)
	return s
}

// WSURL returns the ws:// URL of path on the server.
func (s *Server) WSURL(path string) string {
	return "ws" + strings.TrimPrefix(s.URL, "http") + path
}

// Browser returns an HTTP client with its own cookie jar, to sign in through the app's HTTP views
// before connecting (pass Jar(client.Jar) to the communicator).
func (s *Server) Browser() *http.Client {
	jar, err := cookiejar.New(nil)
	if err != nil {
		s.t.Fatalf("wstest: cookie jar: %v", err)
	}
	return &http.Client{Jar: jar, Timeout: 10 * time.Second}
}

// Communicator returns a communicator for path on the server. Unless an Origin option is given,
// it sends the server's own origin, as a browser on the app's page would.
func (s *Server) Communicator(path string, opts ...Option) *Communicator {
	opts = append([]Option{Origin(s.URL)}, opts...)
	return New(s.t, s.WSURL(path), opts...)
}

// Option configures a Communicator.
type Option func(*Communicator)

// Header adds a request header to the handshake.
func Header(key, value string) Option {
	return func(c *Communicator) { c.header.Add(key, value) }
}

// Origin sets the Origin header ("" sends none, like a non-browser client).
func Origin(origin string) Option {
	return func(c *Communicator) {
		if origin == "" {
			c.header.Del("Origin")
			return
		}
		c.header.Set("Origin", origin)
	}
}

// Jar sends (and stores) cookies through jar — the way to share a session with an HTTP client.
func Jar(jar http.CookieJar) Option {
	return func(c *Communicator) { c.dialer.Jar = jar }
}

// Subprotocols offers subprotocols in the handshake.
func Subprotocols(p ...string) Option {
	return func(c *Communicator) { c.dialer.Subprotocols = append(c.dialer.Subprotocols, p...) }
}

// Timeout sets the default deadline of blocking calls whose context has none.
func Timeout(d time.Duration) Option {
	return func(c *Communicator) { c.Timeout = d }
}

// Communicator is a WebSocket client for tests, after Channels' WebsocketCommunicator.
type Communicator struct {
	// Timeout applies to calls whose context has no deadline. Default 5 s.
	Timeout time.Duration

	t      testing.TB
	url    string
	header http.Header
	dialer websocket.Dialer
	conn   *websocket.Conn

	mu       sync.Mutex
	frames   []Message
	closeErr error // set when the reader stops: a *websocket.CloseError or a network error
	arrived  chan struct{}
	readDone chan struct{}
}

// Message is one WebSocket message received from the server (all its frames).
type Message struct {
	Binary bool
	Data   []byte
}

// Text returns the payload as a string.
func (f Message) Text() string { return string(f.Data) }

// New returns a communicator for a ws:// URL. The connection, if any, is closed when the test ends.
func New(t testing.TB, url string, opts ...Option) *Communicator {
	c := &Communicator{
		Timeout: 5 * time.Second,
		t:       t,
		url:     url,
		header:  http.Header{},
		dialer:  websocket.Dialer{HandshakeTimeout: 5 * time.Second},
		arrived: make(chan struct{}, 1),
	}
	for _, o := range opts {
		o(c)
	}
	t.Cleanup(c.cleanup)
	return c
}

// ConnectResult tells how a handshake went. An accepted handshake has Accepted set (and the
// chosen Subprotocol); a refused one has the HTTP Status the server answered (403...) and the
// first bytes of its Body. Status is 101 when accepted.
type ConnectResult struct {
	Accepted    bool
	Subprotocol string
	Status      int
	Header      http.Header
	Body        string
}

// Connect performs the handshake. A refusal is not an error: it is reported in the result. Errors
// are network failures.
func (c *Communicator) Connect(ctx context.Context) (ConnectResult, error) {
	ctx, cancel := c.deadline(ctx)
	defer cancel()
	conn, resp, err := c.dialer.DialContext(ctx, c.url, c.header)
	var res ConnectResult
	if resp != nil {
		res.Status, res.Header = resp.StatusCode, resp.Header
		if resp.Body != nil {
			b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
			res.Body = string(b)
			_ = resp.Body.Close()
		}
	}
	if err != nil {
		if errors.Is(err, websocket.ErrBadHandshake) && resp != nil {
			return res, nil
		}
		return res, err
	}
	res.Accepted, res.Subprotocol = true, conn.Subprotocol()
	c.conn = conn
	c.readDone = make(chan struct{})
	go c.readLoop()
	return res, nil
}

// MustConnect connects and fails the test unless the handshake is accepted.
func (c *Communicator) MustConnect(ctx context.Context) ConnectResult {
	c.t.Helper()
	res, err := c.Connect(ctx)
	if err != nil {
		c.t.Fatalf("wstest: connect %s: %v", c.url, err)
	}
	if !res.Accepted {
		c.t.Fatalf("wstest: connect %s: refused with HTTP %d (%s)", c.url, res.Status, strings.TrimSpace(res.Body))
	}
	return res
}

func (c *Communicator) readLoop() {
	defer close(c.readDone)
	for {
		op, data, err := c.conn.ReadMessage()
		c.mu.Lock()
		if err != nil {
			c.closeErr = err
		} else {
			c.frames = append(c.frames, Message{Binary: op == websocket.BinaryMessage, Data: data})
		}
		c.mu.Unlock()
		select {
		case c.arrived <- struct{}{}:
		default:
		}
		if err != nil {
			return
		}
	}
}

func (c *Communicator) deadline(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok || c.Timeout <= 0 {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, c.Timeout)
}

var errNotConnected = errors.New("wstest: not connected (call Connect first)")

// SendText sends a text frame.
func (c *Communicator) SendText(ctx context.Context, s string) error {
	return c.write(ctx, websocket.TextMessage, []byte(s))
}

// SendBytes sends a binary frame.
func (c *Communicator) SendBytes(ctx context.Context, b []byte) error {
	return c.write(ctx, websocket.BinaryMessage, b)
}

// SendJSON sends v as JSON in a text frame.
func (c *Communicator) SendJSON(ctx context.Context, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return c.write(ctx, websocket.TextMessage, b)
}

func (c *Communicator) write(ctx context.Context, op int, b []byte) error {
	if c.conn == nil {
		return errNotConnected
	}
	ctx, cancel := c.deadline(ctx)
	defer cancel()
	if d, ok := ctx.Deadline(); ok {
		_ = c.conn.SetWriteDeadline(d)
	}
	return c.conn.WriteMessage(op, b)
}

// Receive waits for the next frame. When the server has closed the connection, it returns a
// *websocket.CloseError carrying the close code (see CloseCode).
func (c *Communicator) Receive(ctx context.Context) (Message, error) {
	if c.conn == nil {
		return Message{}, errNotConnected
	}
	ctx, cancel := c.deadline(ctx)
	defer cancel()
	for {
		c.mu.Lock()
		if len(c.frames) > 0 {
			f := c.frames[0]
			c.frames = c.frames[1:]
			c.mu.Unlock()
			return f, nil
		}
		closeErr := c.closeErr
		c.mu.Unlock()
		if closeErr != nil {
			return Message{}, closeErr
		}
		select {
		case <-c.arrived:
		case <-ctx.Done():
			return Message{}, fmt.Errorf("wstest: nothing received: %w", ctx.Err())
		}
	}
}

// ReceiveText waits for a text frame.
func (c *Communicator) ReceiveText(ctx context.Context) (string, error) {
	f, err := c.Receive(ctx)
	if err != nil {
		return "", err
	}
	if f.Binary {
		return "", fmt.Errorf("wstest: got a binary frame (%d bytes), want text", len(f.Data))
	}
	return f.Text(), nil
}

// ReceiveBytes waits for a binary frame.
func (c *Communicator) ReceiveBytes(ctx context.Context) ([]byte, error) {
	f, err := c.Receive(ctx)
	if err != nil {
		return nil, err
	}
	if !f.Binary {
		return nil, fmt.Errorf("wstest: got a text frame %q, want binary", f.Text())
	}
	return f.Data, nil
}

// ReceiveJSON waits for a text frame and decodes it into v.
func (c *Communicator) ReceiveJSON(ctx context.Context, v any) error {
	s, err := c.ReceiveText(ctx)
	if err != nil {
		return err
	}
	if err := json.Unmarshal([]byte(s), v); err != nil {
		return fmt.Errorf("wstest: frame %q is not JSON for %T: %w", s, v, err)
	}
	return nil
}

// ReceiveNothing waits for d (or less, if ctx ends sooner) and reports an error describing what
// arrived, if anything did. A close by the server counts as something.
func (c *Communicator) ReceiveNothing(ctx context.Context, d time.Duration) error {
	if c.conn == nil {
		return errNotConnected
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	for {
		c.mu.Lock()
		n, closeErr := len(c.frames), c.closeErr
		var first Message
		if n > 0 {
			first = c.frames[0]
		}
		c.mu.Unlock()
		if n > 0 {
			return fmt.Errorf("wstest: expected nothing, got %d frame(s), first %q", n, first.Data)
		}
		if closeErr != nil {
			return fmt.Errorf("wstest: expected nothing, but the connection ended: %w", closeErr)
		}
		select {
		case <-c.arrived:
		case <-timer.C:
			return nil
		case <-ctx.Done():
			return nil
		}
	}
}

// WaitClosed waits for the server to close the connection and returns its close code and reason.
// Frames that arrive first are skipped. A connection dropped without a close frame gives 1006.
func (c *Communicator) WaitClosed(ctx context.Context) (code int, reason string, err error) {
	for {
		_, err := c.Receive(ctx)
		if err == nil {
			continue
		}
		var ce *websocket.CloseError
		if errors.As(err, &ce) {
			return ce.Code, ce.Text, nil
		}
		c.mu.Lock()
		ended := c.closeErr != nil
		c.mu.Unlock()
		if ended {
			return websocket.CloseAbnormalClosure, "", nil
		}
		return 0, "", err
	}
}

// Disconnect closes the connection from the client side with code 1000 and waits for the server's
// answer (Channels' communicator.disconnect()).
func (c *Communicator) Disconnect(ctx context.Context) error {
	return c.DisconnectWith(ctx, websocket.CloseNormalClosure, "")
}

// DisconnectWith closes from the client side with code and reason and waits for the server to
// answer and the connection to end.
func (c *Communicator) DisconnectWith(ctx context.Context, code int, reason string) error {
	if c.conn == nil {
		return errNotConnected
	}
	ctx, cancel := c.deadline(ctx)
	defer cancel()
	d, _ := ctx.Deadline()
	err := c.conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, reason), d)
	if err != nil && !errors.Is(err, websocket.ErrCloseSent) {
		_ = c.conn.Close()
		<-c.readDone
		return err
	}
	select {
	case <-c.readDone:
	case <-ctx.Done():
		_ = c.conn.Close()
		<-c.readDone
		return fmt.Errorf("wstest: the server did not answer the close: %w", ctx.Err())
	}
	return c.conn.Close()
}

// Abort drops the TCP connection without a close frame, like a client that vanished.
func (c *Communicator) Abort() {
	if c.conn == nil {
		return
	}
	_ = c.conn.Close()
	<-c.readDone
}

// Conn returns the underlying gorilla connection (for what the communicator does not cover; reading
// from it directly conflicts with the communicator's own reader).
func (c *Communicator) Conn() *websocket.Conn { return c.conn }

func (c *Communicator) cleanup() {
	if c.conn != nil {
		_ = c.conn.Close()
		<-c.readDone
	}
}

// CloseCode returns the close code of an error from Receive, or 0.
func CloseCode(err error) int {
	var ce *websocket.CloseError
	if errors.As(err, &ce) {
		return ce.Code
	}
	return 0
}
