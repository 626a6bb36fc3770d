package ginws

import (
	"bytes"
	"compress/flate"
	"errors"
	"io"
	"math/rand/v2"
	"net/http"
	"runtime"
	"strings"
	"testing"
)

// deflateForTest compresses p as a permessage-deflate sender does, with the standard library
// directly (not ginws's code), trailer removed.
func deflateForTest(t testing.TB, p []byte) []byte {
	t.Helper()
	var b bytes.Buffer
	w, err := flate.NewWriter(&b, flate.BestCompression)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(p); err != nil {
		t.Fatal(err)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	z := b.Bytes()
	if !bytes.HasSuffix(z, []byte{0, 0, 0xff, 0xff}) {
		t.Fatalf("no sync flush trailer: % x", z)
	}
	return z[:len(z)-4]
}

func TestNegotiateDeflate(t *testing.T) {
	const base = "permessage-deflate; server_no_context_takeover; client_no_context_takeover"
	cases := []struct {
		offer, want string
		maxPlain    int
	}{
		{"", "", 0},
		{"x-webkit-deflate-frame", "", 0},
		{"permessage-deflate", base, 1<<31 - 1},
		{"permessage-deflate; client_max_window_bits", base, 1<<31 - 1},                                    // Chromium's offer
		{"permessage-deflate; client_max_window_bits=10; client_no_context_takeover", base, 1<<31 - 1},     // a window the decompressor takes
		{"permessage-deflate; server_max_window_bits=10", base + "; server_max_window_bits=10", 1 << 10},   // honoured: messages over 1 KiB go plain
		{"PerMessage-Deflate; Server_No_Context_Takeover", base, 1<<31 - 1},                                // names are case-insensitive
		{`permessage-deflate; server_max_window_bits="12"`, base + "; server_max_window_bits=12", 1 << 12}, // quoted value
		{"permessage-deflate; server_max_window_bits", "", 0},                                              // needs a value
		{"permessage-deflate; server_max_window_bits=16", "", 0},
		{"permessage-deflate; server_max_window_bits=7", "", 0},
		{"permessage-deflate; server_max_window_bits=09", "", 0},
		{"permessage-deflate; client_max_window_bits=20", "", 0},
		{"permessage-deflate; server_no_context_takeover=1", "", 0},
		{"permessage-deflate; client_no_context_takeover; client_no_context_takeover", "", 0}, // twice
		{"permessage-deflate; x-unknown", "", 0},
		// A declined offer gives way to the next one.
		{"permessage-deflate; server_max_window_bits=99, permessage-deflate; client_max_window_bits", base, 1<<31 - 1},
		{"foo, permessage-deflate; server_max_window_bits=9", base + "; server_max_window_bits=9", 1 << 9},
	}
	for _, c := range cases {
		h := http.Header{}
		if c.offer != "" {
			h.Set("Sec-WebSocket-Extensions", c.offer)
		}
		got, d := negotiateDeflate(h, Compression{})
		if got != c.want {
			t.Errorf("offer %q: response %q, want %q", c.offer, got, c.want)
			continue
		}
		if d != nil && (d.maxPlain != c.maxPlain || d.level != 1 || d.threshold != defaultDeflateThreshold) {
			t.Errorf("offer %q: params %+v", c.offer, *d)
		}
	}
	// Offers in two header lines.
	h := http.Header{"Sec-Websocket-Extensions": {"permessage-deflate; bogus", "permessage-deflate"}}
	if got, _ := negotiateDeflate(h, Compression{Level: 5, Threshold: -1}); got != base {
		t.Errorf("two lines: %q", got)
	}
}

func TestDeflateRoundTrip(t *testing.T) {
	msg := []byte(strings.Repeat(`{"type":"notification","user":"alice","text":"hello world"},`, 40))
	for level := 1; level <= 9; level++ {
		z, ok := appendDeflated(nil, msg, level)
		if !ok || len(z) >= len(msg)/2 {
			t.Fatalf("level %d: %d -> %d bytes (ok %v)", level, len(msg), len(z), ok)
		}
		out, err := inflate(z, int64(len(msg)))
		if err != nil || !bytes.Equal(out, msg) {
			t.Fatalf("level %d: inflate: %v", level, err)
		}
		if _, err := inflate(z, int64(len(msg)-1)); !errors.Is(err, errInflatedTooBig) {
			t.Fatalf("level %d: one byte over the limit: %v", level, err)
		}
	}
	// Data that does not shrink is not compressed.
	if _, ok := appendDeflated(nil, []byte("ab"), 1); ok {
		t.Error("a 2-byte message was compressed")
	}
	// What the standard library (as another client would) makes, ginws inflates.
	if out, err := inflate(deflateForTest(t, msg), 1<<20); err != nil || !bytes.Equal(out, msg) {
		t.Fatalf("stdlib-made: %v", err)
	}
	// An empty message compresses to a single 0x00 (RFC 7692 §7.2.3.6).
	if out, err := inflate([]byte{0}, 10); err != nil || len(out) != 0 {
		t.Fatalf("empty: %q %v", out, err)
	}
}

func TestInflateCorrupt(t *testing.T) {
	good := deflateForTest(t, []byte(strings.Repeat("hello ", 100)))
	for name, z := range map[string][]byte{
		"reserved block type": {0xff, 0xff, 0xff},
		"truncated":           good[:len(good)/2],
		"garbage":             []byte("this is not deflate"),
	} {
		if _, err := inflate(z, 1<<20); err == nil || errors.Is(err, errInflatedTooBig) {
			t.Errorf("%s: err %v, want a corrupt-data error", name, err)
		}
	}
}

// TestInflateBomb checks that a message that inflates to 1 GiB costs about the limit, not the
// gigabyte: inflate stops as soon as the output passes the limit.
func TestInflateBomb(t *testing.T) {
	bomb := bombForTest(t, 1<<30)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	_, err := inflate(bomb, 64<<10)
	runtime.ReadMemStats(&after)
	if !errors.Is(err, errInflatedTooBig) {
		t.Fatalf("err %v", err)
	}
	if n := after.TotalAlloc - before.TotalAlloc; n > 4<<20 {
		t.Errorf("inflating a bomb against a 64 KiB limit allocated %d bytes", n)
	}
}

// bombForTest makes a compressed message of n (a multiple of 1 MiB) zero bytes, about n/1000
// bytes long: the blocks of 1 MiB of zeros, sync-flushed, repeated (each refers only to the zeros
// before it).
func bombForTest(t testing.TB, n int) []byte {
	var b bytes.Buffer
	w, _ := flate.NewWriter(&b, flate.BestCompression)
	_, _ = w.Write(make([]byte, 1<<20))
	_ = w.Flush()
	z := bytes.Repeat(b.Bytes(), n>>20)
	return z[:len(z)-4]
}

// TestPreparedCompressedOnce checks that a prepared message is compressed once for every
// connection that negotiated the same level, and that each gets the same bytes.
func TestPreparedCompressedOnce(t *testing.T) {
	p, err := PrepareText(strings.Repeat(`{"msg":"hello"}`, 100))
	if err != nil {
		t.Fatal(err)
	}
	d1 := &deflateParams{level: 1, threshold: 256, maxPlain: 1 << 30}
	d9 := &deflateParams{level: 9, threshold: 256, maxPlain: 1 << 30}
	a, b := p.frameFor(d1), p.frameFor(&deflateParams{level: 1, threshold: 100, maxPlain: 1 << 30})
	if &a[0] != &b[0] {
		t.Error("two connections with level 1 got different compressed frames")
	}
	if a[0] != 0x80|rsv1|opText || len(a) >= len(p.frame)/2 {
		t.Errorf("compressed frame: first byte %#x, %d bytes (plain %d)", a[0], len(a), len(p.frame))
	}
	if c := p.frameFor(d9); &c[0] == &a[0] || &p.frameFor(d9)[0] != &c[0] {
		t.Error("level 9 is not kept apart from level 1, or not compressed once")
	}
	if f := p.frameFor(nil); &f[0] != &p.frame[0] {
		t.Error("a connection without compression did not get the plain frame")
	}
	if f := p.frameFor(&deflateParams{level: 1, maxPlain: 1 << 9}); &f[0] != &p.frame[0] {
		t.Error("a message longer than the client's server_max_window_bits window was compressed")
	}
	hdr := 2
	if a[1] == 126 {
		hdr = 4
	}
	z, _ := inflate(a[hdr:], 1<<20)
	if string(z) != string(p.frame[4:]) { // the plain frame's header: 0x81 126 and two length bytes
		t.Error("the compressed frame does not inflate to the message")
	}
}

func TestFrameParserRSV1(t *testing.T) {
	key := [4]byte{1, 2, 3, 4}
	z := deflateForTest(t, []byte("hello hello hello"))
	withRSV := func(b []byte, rsv byte) []byte { b[0] |= rsv; return b }

	p := &frameParser{limit: 1 << 20, deflate: true}
	evs, err := parseAll(p, withRSV(clientFrame(true, opText, z, key), rsv1), 3)
	if err != nil || len(evs) != 1 || !evs[0].deflated || !bytes.Equal(evs[0].data, z) {
		t.Fatalf("compressed text frame: %v %+v", err, evs)
	}
	// Fragmented: RSV1 on the first frame only; the compressed bytes are not UTF-8 and must not be
	// checked as such.
	p = &frameParser{limit: 1 << 20, deflate: true}
	b := append(withRSV(clientFrame(false, opText, z[:3], key), rsv1), clientFrame(true, 0, z[3:], key)...)
	evs, err = parseAll(p, b, 1)
	if err != nil || len(evs) != 1 || !evs[0].deflated || !bytes.Equal(evs[0].data, z) {
		t.Fatalf("fragmented compressed frame: %v %+v", err, evs)
	}
	// A plain message after a compressed one is checked as usual.
	p = &frameParser{limit: 1 << 20, deflate: true}
	evs, err = parseAll(p, append(withRSV(clientFrame(true, opBinary, z, key), rsv1), clientFrame(true, opText, []byte("ok"), key)...), 5)
	if err != nil || len(evs) != 2 || evs[1].deflated || string(evs[1].data) != "ok" {
		t.Fatalf("plain after compressed: %v %+v", err, evs)
	}

	for name, c := range map[string]struct {
		deflate bool
		b       []byte
	}{
		"RSV1 not negotiated":      {false, withRSV(clientFrame(true, opText, z, key), rsv1)},
		"RSV1 on a continuation":   {true, append(clientFrame(false, opText, []byte("a"), key), withRSV(clientFrame(true, 0, []byte("b"), key), rsv1)...)},
		"RSV1 on a ping":           {true, withRSV(clientFrame(true, opPing, nil, key), rsv1)},
		"RSV2 with deflate":        {true, withRSV(clientFrame(true, opText, z, key), 0x20)},
		"RSV3 with deflate":        {true, withRSV(clientFrame(true, opText, z, key), 0x10)},
		"RSV1 on a close":          {true, withRSV(clientFrame(true, opClose, []byte{3, 232}, key), rsv1)},
		"RSV1 on a binary, no ext": {false, withRSV(clientFrame(true, opBinary, z, key), rsv1)},
	} {
		p := &frameParser{limit: 1 << 20, deflate: c.deflate}
		if _, err := parseAll(p, c.b, 7); err == nil || err.Code != CloseProtocolError {
			t.Errorf("%s: err %v, want 1002", name, err)
		}
	}
}

// FuzzInflate feeds arbitrary bytes to inflate as a compressed message: it must never panic or
// return more than the limit, and what ginws compresses must come back unchanged.
func FuzzInflate(f *testing.F) {
	f.Add([]byte{0})
	f.Add([]byte{0xff, 0xff, 0xff})
	f.Add([]byte("not deflate at all"))
	f.Add(deflateForTest(f, []byte(`{"type":"chat.message","message":"hello"}`)))
	f.Add(deflateForTest(f, bytes.Repeat([]byte("abc"), 3000)))
	f.Add(bombForTest(f, 1<<20))
	f.Fuzz(func(t *testing.T, z []byte) {
		const limit = 4096
		out, err := inflate(z, limit)
		if err == nil && len(out) > limit {
			t.Fatalf("inflated %d bytes past the limit", len(out))
		}
		if len(z) > 0 {
			level := int(z[0])%9 + 1
			if c, ok := appendDeflated(nil, z, level); ok {
				back, err := inflate(c, int64(len(z)))
				if err != nil || !bytes.Equal(back, z) {
					t.Fatalf("round trip at level %d: %v", level, err)
				}
			}
		}
	})
}

func TestNegotiateDeflateTakeover(t *testing.T) {
	const big = 1<<31 - 1
	cases := []struct {
		offer, want    string
		serverTakeover bool
		clientWindow   int
		maxPlain       int
		threshold      int
	}{
		// Node's ws and Chromium offer this: takeover both ways.
		{"permessage-deflate; client_max_window_bits", "permessage-deflate", true, 1 << 15, big, 64},
		{"permessage-deflate", "permessage-deflate", true, 1 << 15, big, 64},
		// A client window hint: the reader keeps that much.
		{"permessage-deflate; client_max_window_bits=10", "permessage-deflate", true, 1 << 10, big, 64},
		// gorilla's Dialer offers both no_context_takeover: none either way.
		{"permessage-deflate; server_no_context_takeover; client_no_context_takeover",
			"permessage-deflate; server_no_context_takeover; client_no_context_takeover", false, 0, big, 256},
		// Autobahn's default offer: the client will not take over; the server does.
		{"permessage-deflate; client_no_context_takeover; client_max_window_bits",
			"permessage-deflate; client_no_context_takeover", true, 0, big, 64},
		{"permessage-deflate; server_no_context_takeover", "permessage-deflate; server_no_context_takeover", false, 1 << 15, big, 256},
		// A full window is no limit; a smaller one makes the server decline its takeover and
		// compress messages that fit the window on their own.
		{"permessage-deflate; server_max_window_bits=15", "permessage-deflate; server_max_window_bits=15", true, 1 << 15, big, 64},
		{"permessage-deflate; server_max_window_bits=10",
			"permessage-deflate; server_no_context_takeover; server_max_window_bits=10", false, 1 << 15, 1 << 10, 256},
		{"permessage-deflate; client_no_context_takeover; server_max_window_bits=8",
			"permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=8", false, 0, 1 << 8, 256},
		// Bad offers are declined as without takeover; the next one is tried.
		{"permessage-deflate; server_max_window_bits=16", "", false, 0, 0, 0},
		{"permessage-deflate; client_max_window_bits=7", "", false, 0, 0, 0},
		{"permessage-deflate; server_no_context_takeover; server_no_context_takeover, permessage-deflate; client_max_window_bits=9",
			"permessage-deflate", true, 1 << 9, big, 64},
	}
	for _, c := range cases {
		h := http.Header{"Sec-Websocket-Extensions": {c.offer}}
		got, d := negotiateDeflate(h, Compression{ContextTakeover: true})
		if got != c.want {
			t.Errorf("offer %q: response %q, want %q", c.offer, got, c.want)
			continue
		}
		if d == nil {
			continue
		}
		level := 1
		if c.serverTakeover {
			level = takeoverDeflateLevel // Level 0 with takeover
		}
		if d.level != level || d.serverTakeover != c.serverTakeover || d.clientWindow != c.clientWindow || d.maxPlain != c.maxPlain || d.threshold != c.threshold {
			t.Errorf("offer %q: params %+v, want takeover %v, client window %d, maxPlain %d, threshold %d",
				c.offer, *d, c.serverTakeover, c.clientWindow, c.maxPlain, c.threshold)
		}
	}
	// An explicit threshold holds with takeover too.
	h := http.Header{"Sec-Websocket-Extensions": {"permessage-deflate"}}
	if _, d := negotiateDeflate(h, Compression{ContextTakeover: true, Threshold: 500, Level: 2}); d.threshold != 500 || d.level != 2 {
		t.Errorf("threshold %d, level %d, want 500 and 2", d.threshold, d.level)
	}
	if _, d := negotiateDeflate(h, Compression{ContextTakeover: true, Threshold: -1}); d.threshold != 0 {
		t.Errorf("threshold %d, want 0", d.threshold)
	}
}

// TestCtxDeflaterStream compresses a run of messages with a connection's compressor and inflates
// them with the standard library's reader as one stream (as a peer with context takeover does),
// and with ctxWindow: both get the messages back, and repeats shrink to a few bytes.
func TestCtxDeflaterStream(t *testing.T) {
	msgs := [][]byte{
		[]byte(`{"type":"chat.message","user":"alice","text":"hello everyone, how is it going?"}`),
		[]byte(`{"type":"chat.message","user":"alice","text":"hello everyone, how is it going?"}`),
		[]byte(`{"type":"chat.message","user":"bob","text":"fine, thanks; and you?"}`),
		bytes.Repeat([]byte(`{"id":17,"state":"open"}`), 3000), // longer than the window
		{},
		[]byte(`{"type":"chat.message","user":"bob","text":"fine, thanks; and you?"}`),
	}
	z := ctxDeflater{level: takeoverDeflateLevel}
	defer z.release()
	var stream, plain []byte
	var sizes []int
	w := ctxWindow{size: 1 << 15}
	for i, m := range msgs {
		f := z.appendFrame(nil, opText, m)
		if f[0] != 0x80|rsv1|opText {
			t.Fatalf("message %d: first byte %#x", i, f[0])
		}
		hdr := 2
		switch f[1] {
		case 126:
			hdr = 4
		case 127:
			hdr = 10
		}
		payload := f[hdr:]
		sizes = append(sizes, len(payload))
		stream = append(append(stream, payload...), 0, 0, 0xff, 0xff)
		plain = append(plain, m...)
		got, err := w.inflate(payload, 1<<20)
		if err != nil || !bytes.Equal(got, m) {
			t.Fatalf("message %d: ctxWindow.inflate: %v", i, err)
		}
	}
	out := make([]byte, len(plain))
	if _, err := io.ReadFull(flate.NewReader(bytes.NewReader(stream)), out); err != nil || !bytes.Equal(out, plain) {
		t.Fatalf("the standard library's reader: %v", err)
	}
	// The repeat refers back; after 72 KB of other data the window has moved on.
	if sizes[1] > sizes[0]/4 || sizes[5] < sizes[2] {
		t.Errorf("repeated messages do not refer back: sizes %v", sizes)
	}
	if len(w.b) != 1<<15 || !bytes.Equal(w.b, plain[len(plain)-1<<15:]) {
		t.Errorf("window of %d bytes is not the stream's last 32 KiB", len(w.b))
	}
}

// TestCtxWindow checks that the reader keeps the client's window and no more: a reference beyond
// the window it was told (client_max_window_bits) is corrupt data, one within it decodes.
func TestCtxWindow(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	first := make([]byte, 1000)
	for i := range first {
		first[i] = 'a' + byte(rng.IntN(26))
	}
	var b bytes.Buffer
	fw, _ := flate.NewWriter(&b, flate.BestCompression)
	compress := func(p []byte) []byte {
		b.Reset()
		_, _ = fw.Write(p)
		_ = fw.Flush()
		return bytes.Clone(bytes.TrimSuffix(b.Bytes(), []byte{0, 0, 0xff, 0xff}))
	}
	z1, z2 := compress(first), compress(first[:200]) // z2 refers 1000 bytes back
	for _, c := range []struct {
		size int
		ok   bool
	}{{1 << 9, false}, {1 << 10, true}, {1 << 15, true}} {
		w := ctxWindow{size: c.size}
		if _, err := w.inflate(z1, 1<<20); err != nil {
			t.Fatal(err)
		}
		if len(w.b) != min(c.size, 1000) {
			t.Errorf("window %d: keeps %d bytes", c.size, len(w.b))
		}
		got, err := w.inflate(z2, 1<<20)
		if c.ok != (err == nil) || c.ok && !bytes.Equal(got, first[:200]) {
			t.Errorf("window %d: a reference 1000 bytes back: %v", c.size, err)
		}
		if !c.ok && (err == nil || errors.Is(err, errInflatedTooBig)) {
			t.Errorf("window %d: err %v, want corrupt data", c.size, err)
		}
	}
	// The read limit holds with a window: a bomb after a message is stopped at the limit.
	w := ctxWindow{size: 1 << 15}
	if _, err := w.inflate(z1, 1<<20); err != nil {
		t.Fatal(err)
	}
	if _, err := w.inflate(bombForTest(t, 16<<20), 64<<10); !errors.Is(err, errInflatedTooBig) {
		t.Errorf("bomb with a window: %v", err)
	}
}

// A takeover connection's group messages: compressed against its own history, never the shared
// frame.
func TestPreparedWithTakeover(t *testing.T) {
	p, _ := PrepareText(strings.Repeat(`{"msg":"hello"}`, 30))
	shared := p.frameFor(&deflateParams{level: 1, threshold: 64, maxPlain: 1 << 30})
	z := ctxDeflater{level: takeoverDeflateLevel}
	defer z.release()
	a := z.appendFrame(nil, p.op, p.payload())
	b := z.appendFrame(nil, p.op, p.payload())
	if len(b) >= len(a)/2 || len(a) > len(shared)+8 {
		t.Errorf("frames of %d then %d bytes (shared: %d)", len(a), len(b), len(shared))
	}
}

// An idle spell of one ping interval gives the compressor back; the next message starts a new
// history, which decodes on its own.
func TestCtxDeflaterIdle(t *testing.T) {
	msg := []byte(strings.Repeat(`{"type":"chat.message","text":"hi"}`, 3))
	z := ctxDeflater{level: takeoverDeflateLevel}
	first := z.appendFrame(nil, opText, msg)
	z.pinged() // a message since the last ping: kept
	if z.fw == nil {
		t.Fatal("released a compressor that was used since the last ping")
	}
	if again := z.appendFrame(nil, opText, msg); len(again) >= len(first)/2 {
		t.Errorf("a repeat within the history: %d bytes, first %d", len(again), len(first))
	}
	z.pinged()
	z.pinged() // a whole interval without a message
	if z.fw != nil {
		t.Fatal("kept the compressor of an idle connection")
	}
	after := z.appendFrame(nil, opText, msg)
	if !bytes.Equal(after, first) {
		t.Errorf("after the idle spell: % x, want the first frame % x (a new history)", after, first)
	}
	z.release()
}

// FuzzCtxWindow feeds arbitrary bytes as a client message after a first one set up the window: it
// must never panic or return more than the limit. And a connection's compressor, fed the input cut
// in two messages, must give back both through a window.
func FuzzCtxWindow(f *testing.F) {
	f.Add([]byte{0}, uint8(3))
	f.Add(deflateForTest(f, []byte(`{"type":"chat.message","message":"hello"}`)), uint8(10))
	f.Add(bombForTest(f, 1<<20), uint8(200))
	seed := []byte(strings.Repeat(`{"type":"chat.message","message":"hello"},`, 10))
	zseed := deflateForTest(f, seed)
	f.Fuzz(func(t *testing.T, z []byte, cut uint8) {
		const limit = 4096
		w := ctxWindow{size: 1 << 10}
		if _, err := w.inflate(zseed, limit); err != nil {
			t.Fatal(err)
		}
		if out, err := w.inflate(z, limit); err == nil && len(out) > limit {
			t.Fatalf("inflated %d bytes past the limit", len(out))
		}
		d := ctxDeflater{level: int(cut)%9 + 1}
		defer d.release()
		r := ctxWindow{size: 1 << 15}
		at := min(int(cut), len(z))
		for _, m := range [][]byte{z[:at], z[at:]} {
			fr := d.appendFrame(nil, opBinary, m)
			hdr := 2
			switch fr[1] {
			case 126:
				hdr = 4
			case 127:
				hdr = 10
			}
			if fr[0]&rsv1 == 0 {
				continue // sent plain: out of both histories
			}
			back, err := r.inflate(fr[hdr:], 1<<20)
			if err != nil || !bytes.Equal(back, m) {
				t.Fatalf("round trip of %d bytes at level %d: %v", len(m), d.level, err)
			}
		}
	})
}
