package ginws

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"github.com/klauspost/compress/flate"
)

// permessage-deflate (RFC 7692). By default ginws negotiates it without context takeover in either
// direction: every message is compressed on its own, so
//
//   - one compressed frame is valid for every connection, and a group message (PreparedMessage,
//     RelayJSON) is compressed once per process, not once per member (prepared.go);
//   - no connection keeps flate state between messages: compressors and decompressors come from
//     pools for the length of one message, so an idle connection costs what it costs without
//     compression.
//
// The price is a lower ratio on small messages (no shared history between them); Compression's
// Threshold keeps those uncompressed. Compression.ContextTakeover trades memory for that ratio on
// the connections whose client allows it (deflate_ctx.go).

// Compression configures permessage-deflate for a connection (see WithCompression). The zero value
// is a sensible setting.
type Compression struct {
	// Level is the flate level, 1 (fastest) to 9 (smallest); 0 means 1. Level 1 already gets
	// most of what JSON gives, at a fraction of the CPU of the higher levels. With the server's
	// context takeover 0 means 7: klauspost/compress's levels 1 to 6 start a new history at every
	// message shorter than 128 bytes (they send it Huffman-coded only), so the short messages that
	// takeover is for would gain nothing. Level 7 shrinks a stream of ~90-byte chat lines to a
	// tenth, at about 7 µs a line; a ~1.4 KB notification takes about 24 µs (8 µs at level 1).
	Level int
	// Threshold is the payload size, in bytes, below which a message is sent uncompressed: without
	// context takeover small messages barely shrink, and each costs a compression pass. 0 means
	// 256 (64 for a connection that negotiated context takeover from the server); a negative value
	// compresses every message.
	Threshold int
	// ContextTakeover, when set, negotiates context takeover (RFC 7692 §7.1.1) in each direction
	// the client's offer allows, for endpoints with long private streams of similar messages:
	// each message may refer to the ones before it, and a 150-byte chat line that shrinks by a few
	// percent on its own shrinks to a fraction. Optional; the default (false) never takes over
	// context.
	//
	// Server to client, the connection keeps one compressor across messages: about 1 MB at level 7
	// (800 KB at level 1, 1.1 MB at levels 2 to 6), which is what klauspost/compress's flate.Writer
	// holds. It is taken from a pool at the first compressed message and given back when the
	// connection ends, or when a whole PingInterval (Config) went by without a compressed message:
	// an idle connection holds none, and the message that ends its idle spell starts a new
	// history. With pings off (a negative PingInterval) it is held until the end. Such a
	// connection compresses every message itself, a group message (PreparedMessage, RelayJSON)
	// included: it cannot share the group's frame, which other members' histories would not
	// decode. Connections without takeover on the same endpoint still share it. The server
	// declines takeover in this direction (answering server_no_context_takeover) when the offer
	// says server_no_context_takeover, or limits the server's window (server_max_window_bits below
	// 15): the compressors used here keep a 32 KiB window, and messages compressed on their own
	// and no longer than the client's window are what such a client can decode.
	//
	// Client to server, the connection keeps the client's window — the last 32 KiB of what it
	// inflated, or 2^N bytes when the offer said client_max_window_bits=N — as the dictionary of
	// the next message; the decompressor itself stays pooled. A client whose offer says
	// client_no_context_takeover is answered with it and keeps no window.
	//
	// Memory per connection, measured after one message each way (BenchmarkIdleCompressedMemory,
	// Go heap and stacks): about 3 KB without compression, 4–5 KB with it and no takeover, about
	// 1 MB with takeover while the compressor is held, and 5–10 KB once it is given back (the
	// client's window, grown to fit what the client sent). On the wire (BenchmarkDeflateTakeover):
	// a stream of ~100-byte chat lines goes at 8% of its size with takeover and at 100% without
	// (each line on its own does not shrink); ~1.9 KB notifications at 10% with it, 28% without.
	ContextTakeover bool
}

const (
	defaultDeflateThreshold  = 256
	takeoverDeflateThreshold = 64 // with the server's context takeover
	takeoverDeflateLevel     = 7  // with the server's context takeover: see Compression.Level
	deflateLevels            = 9  // levels 1..9
)

// WithCompression accepts the client's offer of permessage-deflate (RFC 7692), when it made one the
// server can honour, with the given settings; without this option the extension is never
// negotiated. Messages are compressed without context takeover both ways unless
// Compression.ContextTakeover is set, and a compressed message from the client counts against the
// read limit by its inflated size. Browsers
// offer the extension on every socket; it pays off for JSON messages of a few hundred bytes and
// more.
func WithCompression(cfg Compression) AcceptOption {
	return func(o *acceptOptions) { o.compression = &cfg }
}

func (cfg Compression) check() error {
	if cfg.Level < 0 || cfg.Level > deflateLevels {
		return fmt.Errorf("ginws: WithCompression: Level %d is not 0 to 9", cfg.Level)
	}
	return nil
}

// deflateParams is what a connection negotiated; read-only once Accept has returned.
type deflateParams struct {
	level     int // 1..9
	threshold int // payloads shorter than this are sent uncompressed
	// maxPlain is the longest payload that may be compressed: the client's server_max_window_bits
	// (when it sent one) limits the distances the compressor may use, and a message no longer than
	// the window cannot refer further back than it. Longer messages go uncompressed. Without
	// serverTakeover only.
	maxPlain int
	// serverTakeover: the server's messages are compressed by one compressor per connection that
	// keeps its history (deflate_ctx.go); no frame is shared with other connections.
	serverTakeover bool
	// clientWindow is the size of the client's LZ77 window the reader keeps between messages:
	// 0 when the client does not take over context (client_no_context_takeover), else 2^bits.
	clientWindow int
}

// wants reports whether a payload of n bytes is to be compressed.
func (d *deflateParams) wants(n int) bool {
	return d != nil && n >= d.threshold && n <= d.maxPlain
}

// shared reports whether the connection writes frames compressed once for many connections: it
// negotiated compression without the server's context takeover.
func (d *deflateParams) shared() bool { return d != nil && !d.serverTakeover }

// negotiateDeflate picks the first permessage-deflate offer in the request that the server can
// honour (RFC 7692 §5, §7.1) and returns the response's extension value and the parameters, or ""
// when there is none. An offer is declined when it has an unknown parameter, a parameter twice, or
// a bad value; the next one is then tried.
//
// The response always says server_no_context_takeover and client_no_context_takeover unless
// cfg.ContextTakeover is set. With it:
//   - server_no_context_takeover is left out, and the server keeps its history, unless the offer
//     has server_no_context_takeover (§7.1.1.1: the server must then not take over) or
//     server_max_window_bits below 15 (see Compression.ContextTakeover: klauspost's
//     NewWriterWindow can limit the window, but it is a level-5-like fast encoder that, like
//     levels 1 to 6, starts a new history at every message under 128 bytes — and no browser
//     limits the server's window);
//   - client_no_context_takeover is left out, and the reader keeps the client's window, unless
//     the offer has it (§7.1.1.2: the client says it will not take over context, so keeping a
//     window for it would only cost memory).
//
// A server_max_window_bits in the offer is answered with the same value (§7.1.2.1).
// client_max_window_bits is never put in the response: the decompressor takes any window, and a
// value in the offer only tells the window the reader has to keep (§7.1.2.2).
func negotiateDeflate(h http.Header, cfg Compression) (string, *deflateParams) {
	for _, offer := range parseExtensions(h) {
		if offer.name != "permessage-deflate" {
			continue
		}
		var (
			seen                   = map[string]bool{}
			ok                     = true
			serverBits, clientBits = 0, 0 // 0: not in the offer (or clientBits without a value)
		)
		for _, p := range offer.params {
			if seen[p.name] {
				ok = false
				break
			}
			seen[p.name] = true
			switch p.name {
			case "server_no_context_takeover", "client_no_context_takeover":
				ok = !p.hasValue
			case "server_max_window_bits":
				serverBits, ok = windowBits(p.value)
				ok = ok && p.hasValue
			case "client_max_window_bits":
				if p.hasValue {
					clientBits, ok = windowBits(p.value)
				}
			default:
				ok = false
			}
			if !ok {
				break
			}
		}
		if !ok {
			continue
		}
		d := &deflateParams{level: max(cfg.Level, 1), maxPlain: 1<<31 - 1}
		d.serverTakeover = cfg.ContextTakeover && !seen["server_no_context_takeover"] && (serverBits == 0 || serverBits == 15)
		if d.serverTakeover && cfg.Level == 0 {
			d.level = takeoverDeflateLevel
		}
		if cfg.ContextTakeover && !seen["client_no_context_takeover"] {
			d.clientWindow = 1 << 15
			if clientBits != 0 {
				d.clientWindow = 1 << clientBits
			}
		}
		switch {
		case cfg.Threshold < 0:
			d.threshold = 0
		case cfg.Threshold > 0:
			d.threshold = cfg.Threshold
		case d.serverTakeover:
			d.threshold = takeoverDeflateThreshold
		default:
			d.threshold = defaultDeflateThreshold
		}
		resp := "permessage-deflate"
		if !d.serverTakeover {
			resp += "; server_no_context_takeover"
		}
		if d.clientWindow == 0 {
			resp += "; client_no_context_takeover"
		}
		if serverBits != 0 {
			resp += "; server_max_window_bits=" + strconv.Itoa(serverBits)
			if !d.serverTakeover {
				d.maxPlain = 1 << serverBits
			}
		}
		return resp, d
	}
	return "", nil
}

// windowBits parses a *_max_window_bits value: a decimal from 8 to 15, without leading zeros
// (RFC 7692 §7.1.2).
func windowBits(v string) (int, bool) {
	if len(v) == 0 || len(v) > 2 || v[0] == '0' {
		return 0, false
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 8 || n > 15 {
		return 0, false
	}
	return n, true
}

type extension struct {
	name   string
	params []extParam
}

type extParam struct {
	name, value string
	hasValue    bool
}

// parseExtensions parses Sec-WebSocket-Extensions headers (RFC 6455 §9.1): offers separated by
// commas, parameters by semicolons, values as tokens or quoted strings. An offer that does not
// parse is dropped.
func parseExtensions(h http.Header) []extension {
	var out []extension
	for _, line := range h.Values("Sec-WebSocket-Extensions") {
		for _, item := range splitQuoted(line, ',') {
			parts := splitQuoted(item, ';')
			name := strings.TrimSpace(parts[0])
			if !isToken(name) {
				continue
			}
			ext := extension{name: strings.ToLower(name)}
			good := true
			for _, part := range parts[1:] {
				k, v, hasValue := strings.Cut(part, "=")
				k, v = strings.TrimSpace(k), strings.TrimSpace(v)
				if hasValue && len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
					v = v[1 : len(v)-1]
				}
				if !isToken(k) || hasValue && !isToken(v) {
					good = false
					break
				}
				ext.params = append(ext.params, extParam{name: strings.ToLower(k), value: v, hasValue: hasValue})
			}
			if good {
				out = append(out, ext)
			}
		}
	}
	return out
}

// splitQuoted splits s at sep outside double quotes.
func splitQuoted(s string, sep byte) []string {
	var out []string
	quoted, start := false, 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '"':
			quoted = !quoted
		case sep:
			if !quoted {
				out = append(out, s[start:i])
				start = i + 1
			}
		}
	}
	return append(out, s[start:])
}

func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`()<>@,;:\"/[]?={}`, c) >= 0 {
			return false
		}
	}
	return true
}

// Compression, with klauspost/compress's flate (API-compatible with compress/flate): on a 2 KB JSON
// message its level 1 compresses about twice as fast, and it inflates about 2.5 times as fast
// (BenchmarkDeflate and BenchmarkDeflateKlauspost in deflate_bench_test.go), and it was already in
// the module graph. A flate.Writer is large (hundreds of kilobytes of tables), so writers are
// pooled per level and held only while one message is compressed.
var deflaters [deflateLevels]sync.Pool

// deflateTail is what a sync flush ends with; RFC 7692 §7.2.1 has the sender remove it.
var deflateTail = inflateTail[:4]

// appendDeflated appends p compressed at level (without the trailing 00 00 ff ff) to dst. It
// returns dst unchanged and false when the result would not be shorter than p.
func appendDeflated(dst, p []byte, level int) ([]byte, bool) {
	pool := &deflaters[level-1]
	out := sliceWriter{b: dst}
	fw, _ := pool.Get().(*flate.Writer)
	if fw == nil {
		fw, _ = flate.NewWriter(&out, level) // the level is checked: no error
	} else {
		fw.Reset(&out)
	}
	_, _ = fw.Write(p) // a sliceWriter does not fail
	_ = fw.Flush()
	fw.Reset(io.Discard) // drop the reference to out's buffer
	pool.Put(fw)
	z := out.b[len(dst):]
	if len(z) < 4 || !bytes.Equal(z[len(z)-4:], deflateTail) || len(z)-4 >= len(p) {
		return dst, false
	}
	return out.b[:len(out.b)-4], true
}

type sliceWriter struct{ b []byte }

func (w *sliceWriter) Write(p []byte) (int, error) {
	w.b = append(w.b, p...)
	return len(p), nil
}

// Decompression. A decompressor holds a 32 KiB window and its tables; it is pooled too, and taken
// for one message at a time.
var inflaters sync.Pool

// errInflatedTooBig is returned by inflate when the message would exceed the limit.
var errInflatedTooBig = errors.New("inflated message over the read limit")

// inflateTail is put after a compressed message before inflating it: the 00 00 ff ff the sender
// removed (RFC 7692 §7.2.2), then an empty final block, so that the stream ends cleanly where the
// message does. Data that is cut short eats into it and fails.
var inflateTail = []byte{0, 0, 0xff, 0xff, 1, 0, 0, 0xff, 0xff}

// inflate decompresses a message's payload. It stops as soon as the output would exceed limit
// bytes — a small message that would inflate to gigabytes costs at most limit bytes and the work to
// produce them — and returns errInflatedTooBig; corrupt data is another error.
func inflate(z []byte, limit int64) ([]byte, error) { return inflateDict(z, nil, limit) }

// inflateDict is inflate for a message that may refer back into dict, the sender's window as it
// stood before the message (context takeover; nil without it). A reference beyond dict is corrupt
// data.
func inflateDict(z, dict []byte, limit int64) ([]byte, error) {
	src := &multiReader{a: z, b: inflateTail}
	fr, _ := inflaters.Get().(io.ReadCloser)
	if fr == nil {
		fr = flate.NewReaderDict(src, dict)
	} else if err := fr.(flate.Resetter).Reset(src, dict); err != nil {
		return nil, err
	}
	defer func() {
		_ = fr.(flate.Resetter).Reset(&multiReader{}, nil) // drop the reference to z
		inflaters.Put(fr)
	}()
	out := make([]byte, 0, min(int64(max(3*len(z), 512)), limit+1))
	for {
		if len(out) == cap(out) {
			if int64(len(out)) > limit {
				return nil, errInflatedTooBig
			}
			grown := make([]byte, len(out), min(int64(2*cap(out)), limit+1))
			copy(grown, out)
			out = grown
		}
		n, err := fr.Read(out[len(out):cap(out)])
		out = out[:len(out)+n]
		if int64(len(out)) > limit {
			return nil, errInflatedTooBig
		}
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
	}
}

// multiReader reads a then b. It is an io.ByteReader, so that flate reads from it directly.
type multiReader struct{ a, b []byte }

func (r *multiReader) Read(p []byte) (int, error) {
	if len(r.a) == 0 {
		r.a, r.b = r.b, nil
	}
	if len(r.a) == 0 {
		return 0, io.EOF
	}
	n := copy(p, r.a)
	r.a = r.a[n:]
	return n, nil
}

func (r *multiReader) ReadByte() (byte, error) {
	if len(r.a) == 0 {
		r.a, r.b = r.b, nil
	}
	if len(r.a) == 0 {
		return 0, io.EOF
	}
	c := r.a[0]
	r.a = r.a[1:]
	return c, nil
}
