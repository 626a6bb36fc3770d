package ginws_test

import (
	"bytes"
	"compress/flate"
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/gorilla/websocket"

	"ginws.dev/ginws"
	"ginws.dev/ginws/layer"
)

const pmdResponse = "permessage-deflate; server_no_context_takeover; client_no_context_takeover"

// echoConsumer echoes every message, accepting with opts.
func echoConsumer(opts ...ginws.AcceptOption) func() ginws.Consumer {
	return consumer(funcConsumer{
		connect: acceptWith(opts...),
		receive: func(ctx context.Context, c *funcConsumer, f ginws.ClientMessage) error {
			if f.Binary {
				return c.SendBinary(f.Data)
			}
			return c.SendText(string(f.Data))
		},
	})
}

// pmdDeflate compresses p the way a permessage-deflate client does (trailer removed).
func pmdDeflate(t testing.TB, p []byte) []byte {
	t.Helper()
	var b bytes.Buffer
	w, _ := flate.NewWriter(&b, flate.BestCompression)
	_, _ = w.Write(p)
	_ = w.Flush()
	return bytes.TrimSuffix(b.Bytes(), []byte{0, 0, 0xff, 0xff})
}

func pmdInflate(t testing.TB, z []byte) []byte {
	t.Helper()
	var out bytes.Buffer
	r := flate.NewReader(bytes.NewReader(append(z, 0, 0, 0xff, 0xff, 1, 0, 0, 0xff, 0xff)))
	if _, err := out.ReadFrom(r); err != nil {
		t.Fatalf("inflate the server's frame: %v", err)
	}
	return out.Bytes()
}

func gorillaDial(t testing.TB, a *app, path string, compress bool) (*websocket.Conn, *http.Response) {
	t.Helper()
	d := websocket.Dialer{EnableCompression: compress}
	ws, resp, err := d.Dial(a.ts.WSURL(path), http.Header{"Origin": {a.ts.URL}})
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { ws.Close() })
	return ws, resp
}

// Compression is off unless the endpoint asks for it: the offer is ignored and RSV1 is a protocol
// error.
func TestCompressionOffByDefault(t *testing.T) {
	t.Parallel()
	a := newApp(t, ginws.Config{}, echoConsumer())
	c := dialRaw(t, a.ts.WSURL("/ws/x"), "Origin", a.ts.URL, "Sec-WebSocket-Extensions", "permessage-deflate")
	if got := c.resp.Get("Sec-WebSocket-Extensions"); got != "" {
		t.Fatalf("negotiated %q without WithCompression", got)
	}
	f := frame(true, 0x40, 0x1, pmdDeflate(t, []byte("hello")))
	c.write(f)
	got, err := c.read(2 * time.Second)
	if err != nil || got.op != 0x8 || got.closeCode() != ginws.CloseProtocolError {
		t.Fatalf("RSV1 without the extension: %+v %v, want close 1002", got, err)
	}
}

// TestCompressionNegotiation checks the response to offers on the wire, and the frames both ways:
// a compressed client message is inflated, the echo goes compressed (RSV1) above the threshold and
// plain below it.
func TestCompressionNegotiation(t *testing.T) {
	t.Parallel()
	a := newApp(t, ginws.Config{}, echoConsumer(ginws.WithCompression(ginws.Compression{Threshold: 64})))

	// No offer, or one that cannot be honoured: no extension.
	for _, offer := range []string{"", "permessage-deflate; server_max_window_bits=20", "permessage-deflate; foo=bar"} {
		c := dialRaw(t, a.ts.WSURL("/ws/x"), "Origin", a.ts.URL, "Sec-WebSocket-Extensions", offer)
		if got := c.resp.Get("Sec-WebSocket-Extensions"); got != "" {
			t.Errorf("offer %q: response %q, want none", offer, got)
		}
	}

	c := dialRaw(t, a.ts.WSURL("/ws/x"), "Origin", a.ts.URL, "Sec-WebSocket-Extensions", "permessage-deflate; client_max_window_bits")
	if got := c.resp.Get("Sec-WebSocket-Extensions"); got != pmdResponse {
		t.Fatalf("response %q, want %q", got, pmdResponse)
	}
	long := strings.Repeat(`{"type":"chat","text":"hello"}`, 20)
	c.write(frame(true, 0x40, 0x1, pmdDeflate(t, []byte(long))))
	got, err := c.read(2 * time.Second)
	if err != nil || got.op != 0x1 || got.rsv != 0x40 || len(got.payload) >= len(long)/2 {
		t.Fatalf("echo of a long message: %+v %v, want a compressed text frame", got, err)
	}
	if s := pmdInflate(t, got.payload); string(s) != long {
		t.Fatalf("echo inflates to %q", s)
	}
	// Fragmented and compressed, then a short plain one: the echo of that is plain.
	z := pmdDeflate(t, []byte(long))
	c.write(frame(false, 0x40, 0x1, z[:5]), frame(false, 0, 0x0, z[5:10]), frame(true, 0, 0x0, z[10:]), textFrame("hi"))
	got, err = c.read(2 * time.Second)
	if err != nil || got.rsv != 0x40 || string(pmdInflate(t, got.payload)) != long {
		t.Fatalf("echo of a fragmented compressed message: %+v %v", got, err)
	}
	got, err = c.read(2 * time.Second)
	if err != nil || got.rsv != 0 || string(got.payload) != "hi" {
		t.Fatalf("echo of a short message: %+v %v, want a plain frame", got, err)
	}

	// server_max_window_bits=9: honoured by sending longer messages plain.
	c = dialRaw(t, a.ts.WSURL("/ws/x"), "Origin", a.ts.URL, "Sec-WebSocket-Extensions", "permessage-deflate; server_max_window_bits=9")
	if got := c.resp.Get("Sec-WebSocket-Extensions"); got != pmdResponse+"; server_max_window_bits=9" {
		t.Fatalf("response %q", got)
	}
	c.write(frame(true, 0x40, 0x1, pmdDeflate(t, []byte(long))))
	if got, err := c.read(2 * time.Second); err != nil || got.rsv != 0 || string(got.payload) != long {
		t.Fatalf("a %d-byte message with a 512-byte window: %+v %v, want it plain", len(long), got, err)
	}
}

func TestCompressionBadLevel(t *testing.T) {
	t.Parallel()
	errs := make(chan error, 1)
	a := newApp(t, ginws.Config{}, consumer(funcConsumer{connect: func(ctx context.Context, c *funcConsumer) error {
		err := c.Accept(ginws.WithCompression(ginws.Compression{Level: 10}))
		errs <- err
		return err
	}}))
	ws := a.ts.Communicator("/ws/x")
	if res, _ := ws.Connect(testCtx(t)); res.Accepted {
		t.Fatal("accepted with level 10")
	}
	if err := <-errs; err == nil || !strings.Contains(err.Error(), "Level 10") {
		t.Fatalf("Accept: %v", err)
	}
}

// gorilla's client with EnableCompression talks to a compressing endpoint: text and binary, small
// and large, both ways.
func TestCompressionGorillaEcho(t *testing.T) {
	t.Parallel()
	a := newApp(t, ginws.Config{}, echoConsumer(ginws.WithCompression(ginws.Compression{})))
	ws, resp := gorillaDial(t, a, "/ws/x", true)
	if got := resp.Header.Get("Sec-WebSocket-Extensions"); got != pmdResponse {
		t.Fatalf("negotiated %q", got)
	}
	ws.EnableWriteCompression(true)
	msgs := []struct {
		typ  int
		data string
	}{
		{websocket.TextMessage, "hi"},
		{websocket.TextMessage, strings.Repeat(`{"id":1,"name":"notification","body":"something happened"}`, 40)},
		{websocket.BinaryMessage, strings.Repeat("\x00\x01\x02\x03", 5000)},
		{websocket.TextMessage, ""},
		{websocket.TextMessage, "héllo wörld, ünïcode " + strings.Repeat("✓", 300)},
	}
	for _, m := range msgs {
		if err := ws.WriteMessage(m.typ, []byte(m.data)); err != nil {
			t.Fatal(err)
		}
		_ = ws.SetReadDeadline(time.Now().Add(5 * time.Second))
		typ, got, err := ws.ReadMessage()
		if err != nil || typ != m.typ || string(got) != m.data {
			t.Fatalf("echo of %d bytes: type %d, %d bytes, %v", len(m.data), typ, len(got), err)
		}
	}
}

var pmdRelay = ginws.RelayJSON(func(ev layer.Message) (any, error) { return gin.H{"text": ev["text"]}, nil })

// A group message reaches members with and without compression; those with it share one compressed
// frame (TestPreparedCompressedOnce checks the sharing itself).
func TestCompressionGroupFanout(t *testing.T) {
	t.Parallel()
	lay := layer.NewMemory(layer.MemoryConfig{})
	joined := make(chan struct{}, 8)
	a := newApp(t, ginws.Config{Layer: lay}, consumer(funcConsumer{
		groups: func(*funcConsumer) []string { return []string{"room"} },
		events: func(*funcConsumer) ginws.Events { return ginws.Events{"chat.message": pmdRelay} },
		connect: func(ctx context.Context, c *funcConsumer) error {
			defer func() { joined <- struct{}{} }()
			if c.Scope().Param("room") == "z" {
				return c.Accept(ginws.WithCompression(ginws.Compression{}))
			}
			return c.Accept()
		},
	}))
	type member struct {
		ws       *websocket.Conn
		compress bool
	}
	var members []member
	for i := range 5 {
		compress := i != 0
		path := "/ws/plain"
		if compress {
			path = "/ws/z"
		}
		ws, resp := gorillaDial(t, a, path, compress)
		if got := resp.Header.Get("Sec-WebSocket-Extensions"); (got != "") != compress {
			t.Fatalf("member %d: extensions %q", i, got)
		}
		<-joined
		members = append(members, member{ws, compress})
	}
	ctx := testCtx(t)
	for _, text := range []string{"short line", strings.Repeat("a longer notification text, ", 80)} {
		if err := lay.GroupSend(ctx, "room", layer.Message{"type": "chat.message", "text": text}); err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		for i, m := range members {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_ = m.ws.SetReadDeadline(time.Now().Add(5 * time.Second))
				_, got, err := m.ws.ReadMessage()
				if want := fmt.Sprintf(`{"text":%q}`, text); err != nil || string(got) != want {
					t.Errorf("member %d (compress %v): %q %v", i, m.compress, got, err)
				}
			}()
		}
		wg.Wait()
	}
}

// A compressed message is held to the read limit by its inflated size: a decompression bomb (100
// MiB of zeros in about 100 KB) is closed with 1009 once the output passes the limit.
func TestCompressionBomb(t *testing.T) {
	t.Parallel()
	a := newApp(t, ginws.Config{}, echoConsumer(ginws.WithCompression(ginws.Compression{}), ginws.WithReadLimit(1<<20)))
	c := dialRaw(t, a.ts.WSURL("/ws/x"), "Origin", a.ts.URL, "Sec-WebSocket-Extensions", "permessage-deflate")
	var b bytes.Buffer
	w, _ := flate.NewWriter(&b, flate.BestCompression)
	_, _ = w.Write(make([]byte, 1<<20))
	_ = w.Flush()
	bomb := bytes.TrimSuffix(bytes.Repeat(b.Bytes(), 100), []byte{0, 0, 0xff, 0xff}) // 100 MiB of zeros
	if len(bomb) > 1<<20 {
		t.Fatalf("bomb of %d bytes does not fit the read limit itself", len(bomb))
	}
	c.write(frame(true, 0x40, 0x2, bomb))
	got, err := c.read(5 * time.Second)
	if err != nil || got.op != 0x8 || got.closeCode() != ginws.CloseMessageTooBig {
		t.Fatalf("bomb: %+v %v, want close 1009", got, err)
	}
	a.logs.waitFor(t, "message over ReadLimit")
}

// Invalid compressed data, and invalid UTF-8 inside a compressed text message, close with 1007.
func TestCompressionInvalidData(t *testing.T) {
	t.Parallel()
	a := newApp(t, ginws.Config{}, echoConsumer(ginws.WithCompression(ginws.Compression{})))
	for name, f := range map[string][]byte{
		"not deflate":         frame(true, 0x40, 0x2, []byte{0xff, 0xff, 0xff, 0xff}),
		"cut short":           frame(true, 0x40, 0x2, pmdDeflate(t, bytes.Repeat([]byte("abcdefgh"), 100))[:20]),
		"invalid UTF-8 text":  frame(true, 0x40, 0x1, pmdDeflate(t, []byte("abc\xff\xfe"))),
		"RSV1 on a ping":      frame(true, 0x40, 0x9, nil),
		"RSV1 on a fragment":  append(frame(false, 0, 0x1, []byte("a")), frame(true, 0x40, 0x0, []byte("b"))...),
		"RSV2 with extension": frame(true, 0x20, 0x1, []byte("a")),
	} {
		want := ginws.CloseInvalidPayload
		if strings.HasPrefix(name, "RSV") {
			want = ginws.CloseProtocolError
		}
		c := dialRaw(t, a.ts.WSURL("/ws/x"), "Origin", a.ts.URL, "Sec-WebSocket-Extensions", "permessage-deflate")
		c.write(f)
		got, err := c.read(5 * time.Second)
		if err != nil || got.op != 0x8 || got.closeCode() != want {
			t.Errorf("%s: %+v %v, want close %d", name, got, err, want)
		}
	}
}
