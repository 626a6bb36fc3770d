package ginws_test

// Autobahn|Testsuite's permessage-deflate sections, 12 and 13, in Go (case definitions:
// crossbario/autobahn-testsuite, autobahntestsuite/case/case12_x_x.py). Each case opens a
// connection with the case's offers, sends messages cut one after another from a data set, each
// compressed and, where the case says so, auto-fragmented (the compressed payload cut in frames of
// that many bytes), waits for the echo of each before sending the next, and grades OK when every
// echo has the type and bytes sent and the closing handshake it starts is answered with 1000.
//
// Two differences from the suite, said plainly: the data sets are generated here (JSON, HTML,
// German-like text, a bitmap-like and a PDF-like binary, each of the suite's kind; the suite's files
// are not in this repository), and each case sends at most 1 MiB (1000 messages up to 1 KiB, fewer
// above) instead of 1000 messages of up to 128 KiB — the whole suite would push 20 GB through the
// race detector. All 216 cases run (12 categories × the suite's 18 size rows), against each
// endpoint, also under -race, which is how CI runs them; under -race each case sends at most
// 256 KiB and 256 messages (abDeflateBudget). -short runs 7 rows per category (84 cases), 3 for the takeover
// endpoint.
//
// Every case runs twice: against an endpoint with the default Compression, and against one with
// Compression.ContextTakeover (ids prefixed "takeover/"). The suite's offers all carry
// client_no_context_takeover, so the client never takes over context (that direction is tested in
// deflate_ctx_test.go and deflate_node_test.go); the server takes over where the offer lets it —
// section 12 and cases 13.1 and 13.4 — and this client then inflates each echo against the
// server's window, as the suite's does.

import (
	"bufio"
	"bytes"
	"compress/flate"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gin-gonic/gin"

	"ginws.dev/ginws"
)

// abDeflateRows are the suite's MSG_SIZES rows: (payload length, auto-fragment size).
var abDeflateRows = []struct{ size, frag int }{
	{16, 0}, {64, 0}, {256, 0}, {1024, 0}, {4096, 0}, {8192, 0}, {16384, 0}, {32768, 0}, {65536, 0}, {131072, 0},
	{8192, 256}, {16384, 256}, {32768, 256}, {65536, 256}, {131072, 256}, {131072, 1024}, {131072, 4096}, {131072, 32768},
}

// abDeflateBudget is the most a case sends, in bytes: 1 MiB (1024 messages at most), and a quarter
// of that under the race detector (256 messages at most), where every case still runs.
var abDeflateBudget = map[bool]int{false: 1 << 20, true: 1 << 18}[raceEnabled]

// abDeflateShortRows are the rows run with -short (indexes into abDeflateRows), and
// abDeflateTakeoverShortRows those of the takeover endpoint's run with -short.
var (
	abDeflateShortRows         = []int{0, 2, 4, 8, 10, 15, 17}
	abDeflateTakeoverShortRows = []int{0, 4, 15}
)

// The client's offers of section 13 (the suite's PerMessageDeflateOffer parameters), 13.1 being
// also section 12's default offer.
var abDeflateOffers = []string{
	"permessage-deflate; client_no_context_takeover; client_max_window_bits",
	"permessage-deflate; client_no_context_takeover; client_max_window_bits; server_no_context_takeover",
	"permessage-deflate; client_no_context_takeover; client_max_window_bits; server_max_window_bits=8",
	"permessage-deflate; client_no_context_takeover; client_max_window_bits; server_max_window_bits=15",
	"permessage-deflate; client_no_context_takeover; client_max_window_bits; server_no_context_takeover; server_max_window_bits=8",
	"permessage-deflate; client_no_context_takeover; client_max_window_bits; server_no_context_takeover; server_max_window_bits=15",
	"permessage-deflate; client_no_context_takeover; client_max_window_bits; server_no_context_takeover; server_max_window_bits=8, " +
		"permessage-deflate; client_no_context_takeover; client_max_window_bits; server_no_context_takeover, " +
		"permessage-deflate; client_no_context_takeover; client_max_window_bits",
}

type abDataSet struct {
	name   string
	binary bool
	data   []byte
}

// abDeflateData makes the five data sets of section 12 (13 uses the JSON one).
func abDeflateData() []abDataSet {
	rng := mrand.New(mrand.NewPCG(12, 13))
	words := []string{"der", "die", "und", "Faust", "Mephistopheles", "Gretchen", "Nacht", "Geist", "über", "schön", "Wagner", "Himmel", "Erde", "Welt", "Liebe", "müssen", "Straße"}
	var js, html, text bytes.Buffer
	js.WriteString("[")
	for i := 0; js.Len() < 200<<10; i++ {
		fmt.Fprintf(&js, `{"id":%d,"user":"user%d","score":%d.%02d,"tags":["a%d","b%d"],"active":%v,"text":"%s %s %s"},`,
			i, rng.IntN(500), rng.IntN(1000), rng.IntN(100), rng.IntN(20), rng.IntN(9), rng.IntN(2) == 0,
			words[rng.IntN(4)], "lorem", "ipsum")
	}
	for i := 0; html.Len() < 260<<10; i++ {
		fmt.Fprintf(&html, `<div class="row r%d"><a href="/item/%d">Item %d</a><span style="color:#%06x">%d</span></div>`+"\n", i%7, i, i, rng.IntN(1<<24), rng.IntN(1e6))
	}
	for text.Len() < 220<<10 {
		text.WriteString(words[rng.IntN(len(words))])
		if rng.IntN(12) == 0 {
			text.WriteString(".\n")
		} else {
			text.WriteString(" ")
		}
	}
	bitmap := make([]byte, 263222) // a 512x512 picture: smooth gradients and noise
	for i := range bitmap {
		x, y := i%1024, i/1024
		bitmap[i] = byte((x*y)>>6) + byte(rng.IntN(8))
	}
	pdf := make([]byte, 1<<20) // compressed streams (random) between readable objects
	for off := 0; off < len(pdf); {
		obj := fmt.Appendf(nil, "%d 0 obj << /Length %d /Filter /FlateDecode >> stream\n", off, 4096)
		off += copy(pdf[off:], obj)
		end := min(off+rng.IntN(4096), len(pdf))
		for ; off < end; off++ {
			pdf[off] = byte(rng.Uint32())
		}
	}
	return []abDataSet{
		{"Faust-like German text", true, text.Bytes()},
		{"bitmap-like picture", true, bitmap},
		{"PDF-like document", true, pdf},
		{"JSON data", false, js.Bytes()},
		{"HTML data", false, html.Bytes()},
	}
}

type abDeflateCase struct {
	id      string
	offer   string
	data    abDataSet
	size    int
	frag    int
	count   int
	timeout time.Duration
}

func abDeflateCases(takeover bool) []abDeflateCase {
	sets := abDeflateData()
	short := abDeflateShortRows
	if takeover {
		short = abDeflateTakeoverShortRows
	}
	var cs []abDeflateCase
	add := func(id, offer string, set abDataSet) {
		for i, r := range abDeflateRows {
			if testing.Short() && !slices.Contains(short, i) {
				continue
			}
			cs = append(cs, abDeflateCase{id: fmt.Sprintf("%s.%d", id, i+1), offer: offer, data: set, size: r.size, frag: r.frag,
				count: min(abDeflateBudget/1024, abDeflateBudget/r.size), timeout: 60 * time.Second})
		}
	}
	for j, set := range sets {
		add(fmt.Sprintf("12.%d", j+1), abDeflateOffers[0], set)
	}
	for j, offer := range abDeflateOffers {
		add(fmt.Sprintf("13.%d", j+1), offer, sets[3])
	}
	return cs
}

// TestAutobahnDeflate runs the cases against ginws's echo consumer with WithCompression, without
// and with ContextTakeover.
func TestAutobahnDeflate(t *testing.T) {
	t.Parallel()
	srv := ginws.New(ginws.Config{Logger: discard()})
	r := gin.New()
	for path, cfg := range map[string]ginws.Compression{"/echo": {}, "/echo-takeover": {ContextTakeover: true}} {
		r.GET(path, srv.Mount(func() ginws.Consumer {
			return consumer(funcConsumer{
				connect: acceptWith(ginws.WithCompression(cfg), ginws.WithReadLimit(abReadLimit), ginws.WithOutboundLimit(abOutboundLimit)),
				receive: func(ctx context.Context, c *funcConsumer, f ginws.ClientMessage) error {
					if f.Binary {
						return c.SendBinary(f.Data)
					}
					return c.SendText(string(f.Data))
				},
			})()
		}))
	}
	ts := httptest.NewServer(r)
	t.Cleanup(ts.Close)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	})
	wsURL := "ws" + strings.TrimPrefix(ts.URL, "http") + "/echo"
	for _, takeover := range []bool{false, true} {
		for _, c := range abDeflateCases(takeover) {
			url, id := wsURL, c.id
			if takeover {
				url, id = wsURL+"-takeover", "takeover/"+c.id
			}
			t.Run(id, func(t *testing.T) {
				if err := abDeflatePlay(c, url, takeover); err != nil {
					t.Errorf("%s (%s, %d bytes, fragments of %d, offer %q): FAILED: %v", id, c.data.name, c.size, c.frag, c.offer, err)
				}
			})
		}
	}
}

// abDeflatePlay runs one case against an endpoint with or without ContextTakeover; nil is the
// grade OK.
func abDeflatePlay(c abDeflateCase, wsURL string, takeover bool) error {
	conn, br, resp, err := abDeflateDial(wsURL, c.offer)
	if err != nil {
		return err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(c.timeout))
	params, err := abCheckResponse(c.offer, resp.Get("Sec-WebSocket-Extensions"), takeover)
	if err != nil {
		return err
	}
	var zbuf bytes.Buffer
	zw, _ := flate.NewWriter(&zbuf, flate.DefaultCompression)
	op := abOpText
	if c.data.binary {
		op = abOpBin
	}
	ptr := 0
	for i := range c.count {
		msg := make([]byte, 0, c.size)
		for len(msg) < c.size {
			n := min(c.size-len(msg), len(c.data.data)-ptr)
			msg = append(msg, c.data.data[ptr:ptr+n]...)
			ptr = (ptr + n) % len(c.data.data)
		}
		// The client compresses each message on its own (the server asked for
		// client_no_context_takeover).
		zbuf.Reset()
		zw.Reset(&zbuf)
		_, _ = zw.Write(msg)
		_ = zw.Flush()
		z := bytes.TrimSuffix(zbuf.Bytes(), []byte{0, 0, 0xff, 0xff})
		var out []byte
		frag := c.frag
		if frag == 0 {
			frag = len(z) + 1
		}
		for off := 0; ; off += frag {
			end := min(off+frag, len(z))
			f := abFrame{op: abOpCont, more: end < len(z), payload: z[off:end]}
			if off == 0 {
				f.op, f.rsv = op, 4
			}
			out = f.encode(out, abNewKey())
			if end == len(z) {
				break
			}
		}
		if _, err := conn.Write(out); err != nil {
			return fmt.Errorf("message %d: write: %w", i, err)
		}
		gotOp, got, err := abReadMessage(br, params)
		if err != nil {
			return fmt.Errorf("message %d: %w", i, err)
		}
		if gotOp != op || !bytes.Equal(got, msg) {
			return fmt.Errorf("message %d: echo differs (opcode %d, %d bytes; sent opcode %d, %d bytes)", i, gotOp, len(got), op, len(msg))
		}
	}
	// The client closes; the server must answer 1000 and drop TCP.
	if _, err := conn.Write(abFrame{op: abOpClose, payload: []byte{3, 232}}.encode(nil, abNewKey())); err != nil {
		return err
	}
	gotOp, got, err := abReadMessage(br, params)
	if err != nil || gotOp != abOpClose || len(got) < 2 || binary.BigEndian.Uint16(got) != 1000 {
		return fmt.Errorf("close: opcode %d payload %x %v, want a close 1000", gotOp, got, err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(abServerDropTimeout))
	if n, err := br.Read(make([]byte, 1)); n != 0 || !errors.Is(err, io.EOF) {
		return fmt.Errorf("after the closing handshake: %d bytes, %v (want the server to drop TCP)", n, err)
	}
	return nil
}

type abDeflateParams struct {
	maxWindow int // the server's window, from server_max_window_bits (15 when absent)
	// takeover: the response has no server_no_context_takeover; hist is then the server's window,
	// the last 2^maxWindow bytes of the compressed messages it sent.
	takeover bool
	hist     []byte
	zr       io.ReadCloser // the inflater, reused from message to message
}

// abCheckResponse checks the server's extension response against the offers, as a client must
// (RFC 7692 §5, §7): one permessage-deflate with known parameters, each allowed in a response to
// one of the offers. An endpoint with ContextTakeover (takeover) must take over context where the
// accepted offer — the first: the server can honour each — lets it, and only there.
func abCheckResponse(offers, resp string, takeover bool) (*abDeflateParams, error) {
	p := &abDeflateParams{maxWindow: 15}
	if resp == "" {
		return p, errors.New("the server declined permessage-deflate (UNIMPLEMENTED)")
	}
	parts := strings.Split(resp, ";")
	if strings.TrimSpace(parts[0]) != "permessage-deflate" || strings.Contains(resp, ",") {
		return p, fmt.Errorf("extension response %q", resp)
	}
	serverBits := ""
	for _, part := range parts[1:] {
		k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
		switch k {
		case "server_no_context_takeover", "client_no_context_takeover":
		case "server_max_window_bits":
			serverBits = v
		case "client_max_window_bits":
			if !strings.Contains(offers, "client_max_window_bits") {
				return p, fmt.Errorf("response %q sets client_max_window_bits, which was not offered", resp)
			}
		default:
			return p, fmt.Errorf("response %q has an unknown parameter %q", resp, k)
		}
	}
	if !strings.Contains(resp, "client_no_context_takeover") {
		return p, fmt.Errorf("response %q lets the client keep context: this client does not", resp)
	}
	if serverBits != "" {
		_, _ = fmt.Sscan(serverBits, &p.maxWindow)
		if p.maxWindow < 8 || p.maxWindow > 15 {
			return p, fmt.Errorf("response %q: bad server_max_window_bits", resp)
		}
	}
	first, _, _ := strings.Cut(offers, ",")
	p.takeover = !strings.Contains(resp, "server_no_context_takeover")
	wantTakeover := takeover && !strings.Contains(first, "server_no_context_takeover") && !strings.Contains(first, "server_max_window_bits=8")
	if p.takeover != wantTakeover {
		return p, fmt.Errorf("response %q: server context takeover %v, want %v", resp, p.takeover, wantTakeover)
	}
	if p.takeover && p.maxWindow < 15 {
		return p, fmt.Errorf("response %q: takeover with a window this client cannot check", resp)
	}
	// An offer with server_max_window_bits=8 is accepted only by a response with 8; every first
	// offer here is one the server can honour, so it must be the one accepted.
	if strings.Contains(first, "server_max_window_bits=8") && p.maxWindow > 8 {
		return p, fmt.Errorf("response %q ignores the offer's server_max_window_bits=8", resp)
	}
	return p, nil
}

// abReadMessage reads one message (or a close frame) from the server, inflating a compressed one
// and checking that its back-references stay within the server's window.
func abReadMessage(br *bufio.Reader, params *abDeflateParams) (byte, []byte, error) {
	var op byte
	var msg []byte
	compressed := false
	for {
		var h [2]byte
		if _, err := io.ReadFull(br, h[:]); err != nil {
			return 0, nil, err
		}
		n := uint64(h[1] & 0x7f)
		switch n {
		case 126:
			var b [2]byte
			if _, err := io.ReadFull(br, b[:]); err != nil {
				return 0, nil, err
			}
			n = uint64(binary.BigEndian.Uint16(b[:]))
		case 127:
			var b [8]byte
			if _, err := io.ReadFull(br, b[:]); err != nil {
				return 0, nil, err
			}
			n = binary.BigEndian.Uint64(b[:])
		}
		if h[1]&0x80 != 0 || n > abMaxServerFrame {
			return 0, nil, fmt.Errorf("bad server frame header %x", h)
		}
		payload := make([]byte, n)
		if _, err := io.ReadFull(br, payload); err != nil {
			return 0, nil, err
		}
		fop, rsv := h[0]&0x0f, h[0]&0x70
		if fop >= abOpClose {
			if rsv != 0 {
				return 0, nil, fmt.Errorf("RSV bits %x on a control frame", rsv)
			}
			if fop == abOpClose {
				return fop, payload, nil
			}
			continue
		}
		switch {
		case fop != abOpCont:
			op, compressed = fop, rsv == 0x40
			if rsv&^0x40 != 0 {
				return 0, nil, fmt.Errorf("RSV bits %x", rsv)
			}
		case rsv != 0:
			return 0, nil, fmt.Errorf("RSV bits %x on a continuation frame", rsv)
		}
		msg = append(msg, payload...)
		if h[0]&0x80 == 0 {
			continue
		}
		if compressed {
			// Each message ends the stream here (an empty final block after the sync flush's
			// tail); with takeover it refers back into the server's window, the dictionary.
			var dict []byte
			if params.takeover {
				dict = params.hist
			}
			src := bytes.NewReader(append(msg, 0, 0, 0xff, 0xff, 1, 0, 0, 0xff, 0xff))
			if params.zr == nil {
				params.zr = flate.NewReaderDict(src, dict)
			} else if err := params.zr.(flate.Resetter).Reset(src, dict); err != nil {
				return 0, nil, err
			}
			out, err := io.ReadAll(params.zr)
			if err != nil {
				return 0, nil, fmt.Errorf("inflate the echo: %w", err)
			}
			if params.takeover {
				params.hist = append(params.hist, out...)
				if n := len(params.hist) - 1<<params.maxWindow; n > 0 {
					params.hist = params.hist[n:]
				}
			}
			// With a window of 2^bits, a message no longer than the window cannot have used more.
			if params.maxWindow < 15 && len(out) > 1<<params.maxWindow {
				return 0, nil, fmt.Errorf("a %d-byte message compressed past server_max_window_bits=%d", len(out), params.maxWindow)
			}
			msg = out
		}
		return op, msg, nil
	}
}

func abDeflateDial(wsURL, offer string) (net.Conn, *bufio.Reader, http.Header, error) {
	u, err := url.Parse(wsURL)
	if err != nil {
		return nil, nil, nil, err
	}
	conn, err := net.DialTimeout("tcp", u.Host, abHandshakeTimeout)
	if err != nil {
		return nil, nil, nil, err
	}
	var nonce [16]byte
	_, _ = rand.Read(nonce[:])
	req := "GET " + u.RequestURI() + " HTTP/1.1\r\nHost: " + u.Host + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: " + base64.StdEncoding.EncodeToString(nonce[:]) + "\r\nSec-WebSocket-Version: 13\r\n" +
		"Sec-WebSocket-Extensions: " + offer + "\r\n\r\n"
	_ = conn.SetDeadline(time.Now().Add(abHandshakeTimeout))
	if _, err := io.WriteString(conn, req); err != nil {
		conn.Close()
		return nil, nil, nil, err
	}
	br := bufio.NewReaderSize(conn, 64<<10)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		conn.Close()
		return nil, nil, nil, fmt.Errorf("handshake: %v %v", resp, err)
	}
	return conn, br, resp.Header, nil
}
