package ginws_test

import (
	"bytes"
	"compress/flate"
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"ginws.dev/ginws"
	"ginws.dev/ginws/layer"
)

// pmdPeer is the client's half of permessage-deflate with context takeover both ways, built on the
// standard library (not ginws's code): one compressor kept across messages, and the server's
// window — the last 32 KiB it sent compressed — as the dictionary of its next message.
type pmdPeer struct {
	zbuf bytes.Buffer
	zw   *flate.Writer
	hist []byte
}

func newPMDPeer() *pmdPeer {
	p := &pmdPeer{}
	p.zw, _ = flate.NewWriter(&p.zbuf, flate.BestSpeed+1)
	return p
}

func (p *pmdPeer) deflate(msg []byte) []byte {
	p.zbuf.Reset()
	_, _ = p.zw.Write(msg)
	_ = p.zw.Flush()
	return bytes.Clone(bytes.TrimSuffix(p.zbuf.Bytes(), []byte{0, 0, 0xff, 0xff}))
}

func (p *pmdPeer) inflate(t testing.TB, z []byte) []byte {
	t.Helper()
	var out bytes.Buffer
	r := flate.NewReaderDict(bytes.NewReader(append(bytes.Clone(z), 0, 0, 0xff, 0xff, 1, 0, 0, 0xff, 0xff)), p.hist)
	if _, err := out.ReadFrom(r); err != nil {
		t.Fatalf("inflate the server's frame against its window: %v", err)
	}
	p.hist = append(p.hist, out.Bytes()...)
	if len(p.hist) > 1<<15 {
		p.hist = p.hist[len(p.hist)-1<<15:]
	}
	return out.Bytes()
}

// TestCompressionTakeoverEcho: a client that takes over context both ways talks to an endpoint
// with ContextTakeover. Its messages refer to the ones before (the server keeps its window), and
// the server's echoes do too: a repeated message comes back in a few bytes.
func TestCompressionTakeoverEcho(t *testing.T) {
	t.Parallel()
	a := newApp(t, ginws.Config{}, echoConsumer(ginws.WithCompression(ginws.Compression{ContextTakeover: true})))
	c := dialRaw(t, a.ts.WSURL("/ws/x"), "Origin", a.ts.URL, "Sec-WebSocket-Extensions", "permessage-deflate; client_max_window_bits")
	if got := c.resp.Get("Sec-WebSocket-Extensions"); got != "permessage-deflate" {
		t.Fatalf("response %q, want takeover both ways", got)
	}
	peer := newPMDPeer()
	line := `{"type":"chat.message","room":"lobby","user":"alice","text":"did anyone see the release notes?"}`
	notice := strings.Repeat(`{"id":4100,"kind":"issue","title":"Fix reconnect backoff","state":"open"},`, 20)
	var sizes []int
	for i, m := range []string{line, line, notice, "hi", notice, line} {
		z := peer.deflate([]byte(m))
		c.write(frame(true, 0x40, 0x1, z))
		got, err := c.read(5 * time.Second)
		if err != nil || got.op != 0x1 {
			t.Fatalf("echo %d: %+v %v", i, got, err)
		}
		if m == "hi" { // under the threshold: plain, and out of both histories
			if got.rsv != 0 || string(got.payload) != m {
				t.Fatalf("echo of a short message: %+v", got)
			}
			sizes = append(sizes, len(got.payload))
			continue
		}
		if got.rsv != 0x40 {
			t.Fatalf("echo %d of %d bytes is not compressed", i, len(m))
		}
		if s := peer.inflate(t, got.payload); string(s) != m {
			t.Fatalf("echo %d inflates to %q", i, s)
		}
		sizes = append(sizes, len(got.payload))
	}
	// The second chat line and notice refer to the first ones.
	if sizes[1] > sizes[0]/4 || sizes[4] > sizes[2]/4 || sizes[5] > sizes[0]/4 {
		t.Errorf("compressed echo sizes %v: repeats are not much smaller", sizes)
	}
}

// Members with and without takeover on one endpoint: gorilla's Dialer offers no context takeover
// either way (it shares the group's frame), raw clients that allow takeover get the group's
// messages compressed against their own history.
func TestCompressionTakeoverGroup(t *testing.T) {
	t.Parallel()
	lay := layer.NewMemory(layer.MemoryConfig{})
	joined := make(chan struct{}, 8)
	a := newApp(t, ginws.Config{Layer: lay}, consumer(funcConsumer{
		groups: func(*funcConsumer) []string { return []string{"room"} },
		events: func(*funcConsumer) ginws.Events { return ginws.Events{"chat.message": pmdRelay} },
		connect: func(ctx context.Context, c *funcConsumer) error {
			defer func() { joined <- struct{}{} }()
			return c.Accept(ginws.WithCompression(ginws.Compression{ContextTakeover: true}))
		},
	}))
	var gorillas []*websocket.Conn
	for range 2 {
		ws, resp := gorillaDial(t, a, "/ws/g", true)
		if got := resp.Header.Get("Sec-WebSocket-Extensions"); got != pmdResponse {
			t.Fatalf("gorilla negotiated %q, want no takeover", got)
		}
		<-joined
		gorillas = append(gorillas, ws)
	}
	type rawMember struct {
		c    *rawClient
		peer *pmdPeer
	}
	var raws []rawMember
	for range 2 {
		c := dialRaw(t, a.ts.WSURL("/ws/r"), "Origin", a.ts.URL, "Sec-WebSocket-Extensions", "permessage-deflate; client_max_window_bits")
		if got := c.resp.Get("Sec-WebSocket-Extensions"); got != "permessage-deflate" {
			t.Fatalf("raw client negotiated %q", got)
		}
		<-joined
		raws = append(raws, rawMember{c, newPMDPeer()})
	}
	ctx := testCtx(t)
	text := strings.Repeat("a notification for the room, ", 12)
	wire := make([][]int, len(raws))
	for round := range 3 {
		if err := lay.GroupSend(ctx, "room", layer.Message{"type": "chat.message", "text": text}); err != nil {
			t.Fatal(err)
		}
		want := fmt.Sprintf(`{"text":%q}`, text)
		var wg sync.WaitGroup
		for i, ws := range gorillas {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_ = ws.SetReadDeadline(time.Now().Add(5 * time.Second))
				if _, got, err := ws.ReadMessage(); err != nil || string(got) != want {
					t.Errorf("round %d, gorilla member %d: %q %v", round, i, got, err)
				}
			}()
		}
		wg.Wait()
		for i, m := range raws {
			got, err := m.c.read(5 * time.Second)
			if err != nil || got.rsv != 0x40 {
				t.Fatalf("round %d, raw member %d: %+v %v", round, i, got, err)
			}
			if s := m.peer.inflate(t, got.payload); string(s) != want {
				t.Fatalf("round %d, raw member %d: %q", round, i, s)
			}
			wire[i] = append(wire[i], len(got.payload))
		}
	}
	for i, w := range wire {
		if w[1] > w[0]/4 || w[2] > w[0]/4 {
			t.Errorf("raw member %d: compressed sizes %v, repeats not much smaller", i, w)
		}
	}
}

// A decompression bomb after a message that set up the client's window is closed with 1009, like
// one without takeover.
func TestCompressionTakeoverBomb(t *testing.T) {
	t.Parallel()
	a := newApp(t, ginws.Config{}, echoConsumer(ginws.WithCompression(ginws.Compression{ContextTakeover: true}), ginws.WithReadLimit(1<<20)))
	c := dialRaw(t, a.ts.WSURL("/ws/x"), "Origin", a.ts.URL, "Sec-WebSocket-Extensions", "permessage-deflate")
	peer := newPMDPeer()
	msg := strings.Repeat("some text the next message refers to; ", 20)
	c.write(frame(true, 0x40, 0x1, peer.deflate([]byte(msg))))
	if got, err := c.read(5 * time.Second); err != nil || string(peer.inflate(t, got.payload)) != msg {
		t.Fatalf("first echo: %+v %v", got, err)
	}
	// 100 MiB of zeros from the same compressor: 1 MiB of zeros, sync-flushed, repeated (each copy
	// refers only to the zeros before it).
	peer.zbuf.Reset()
	_, _ = peer.zw.Write(make([]byte, 1<<20))
	_ = peer.zw.Flush()
	bomb := bytes.TrimSuffix(bytes.Repeat(peer.zbuf.Bytes(), 100), []byte{0, 0, 0xff, 0xff})
	if len(bomb) > 1<<20 {
		t.Fatalf("bomb of %d bytes does not fit the read limit itself", len(bomb))
	}
	c.write(frame(true, 0x40, 0x2, bomb))
	got, err := c.read(5 * time.Second)
	if err != nil || got.op != 0x8 || got.closeCode() != ginws.CloseMessageTooBig {
		t.Fatalf("bomb: %+v %v, want close 1009", got, err)
	}
}

// A client that said client_max_window_bits=9 and then refers further back than 512 bytes sends
// data the server cannot decode (it kept the window the client announced): closed with 1007.
func TestCompressionTakeoverClientWindow(t *testing.T) {
	t.Parallel()
	a := newApp(t, ginws.Config{}, echoConsumer(ginws.WithCompression(ginws.Compression{ContextTakeover: true})))
	c := dialRaw(t, a.ts.WSURL("/ws/x"), "Origin", a.ts.URL, "Sec-WebSocket-Extensions", "permessage-deflate; client_max_window_bits=9")
	if got := c.resp.Get("Sec-WebSocket-Extensions"); got != "permessage-deflate" {
		t.Fatalf("response %q", got)
	}
	peer := newPMDPeer()
	var first []byte
	for i := range 250 {
		first = fmt.Appendf(first, "%d,", i*7919%10007)
	}
	c.write(frame(true, 0x40, 0x2, peer.deflate(first)))
	if got, err := c.read(5 * time.Second); err != nil || got.op != 0x2 {
		t.Fatalf("first echo: %+v %v", got, err)
	}
	c.write(frame(true, 0x40, 0x2, peer.deflate(first[:100]))) // refers ~1 KB back
	got, err := c.read(5 * time.Second)
	if err != nil || got.op != 0x8 || got.closeCode() != ginws.CloseInvalidPayload {
		t.Fatalf("a reference past the client's window: %+v %v, want close 1007", got, err)
	}
}

// A connection that stays idle for a ping interval gives its compressor back: after two pings with
// no message between them, a repeat of an earlier message is compressed without history (as big as
// the first time), and the client, which kept its window, decodes it as well.
func TestCompressionTakeoverIdleRelease(t *testing.T) {
	t.Parallel()
	a := newApp(t, ginws.Config{PingInterval: 20 * time.Millisecond, PingTimeout: time.Minute},
		echoConsumer(ginws.WithCompression(ginws.Compression{ContextTakeover: true})))
	c := dialRaw(t, a.ts.WSURL("/ws/x"), "Origin", a.ts.URL, "Sec-WebSocket-Extensions", "permessage-deflate")
	peer := newPMDPeer()
	line := `{"type":"chat.message","room":"lobby","user":"alice","text":"did anyone see the release notes?"}`
	// echo returns the size of the echo's payload, and the pings that came before it.
	echo := func() (size, pings int) {
		t.Helper()
		c.write(frame(true, 0x40, 0x1, peer.deflate([]byte(line))))
		for {
			got, err := c.read(5 * time.Second)
			if err != nil {
				t.Fatal(err)
			}
			if got.op == 0x9 {
				pings++
				continue
			}
			if got.op != 0x1 || got.rsv != 0x40 || string(peer.inflate(t, got.payload)) != line {
				t.Fatalf("echo: %+v", got)
			}
			return len(got.payload), pings
		}
	}
	first, _ := echo()
	// Unless two pings went by between the messages (a slow run), the second refers to the first.
	if second, pings := echo(); pings < 2 && second > first/4 {
		t.Fatalf("echo sizes %d then %d: the history is not used", first, second)
	}
	for pings := 0; pings < 2; {
		got, err := c.read(5 * time.Second)
		if err != nil || got.op != 0x9 {
			t.Fatalf("waiting for pings: %+v %v", got, err)
		}
		pings++
	}
	if third, _ := echo(); third != first {
		t.Errorf("after an idle interval the echo is %d bytes, want %d (a new history)", third, first)
	}
}
