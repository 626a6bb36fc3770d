package ginws

import (
	"bytes"
	"io"

	"github.com/klauspost/compress/flate"
)

// Context takeover (Compression.ContextTakeover, RFC 7692 §7.1.1): state a connection keeps
// between its messages, one half per direction, each owned by one goroutine.
//
//   - ctxDeflater, the server's compressor, belongs to the pump (the only goroutine that writes
//     frames, conn_write.go): messages go through it in the order they reach the socket, which is
//     the order the client inflates them in. It is taken from the deflaters pool at the first
//     compressed message and given back by finish — or at a keepalive ping when no message was
//     compressed since the ping before: a connection idle for a PingInterval holds no compressor,
//     and its next message starts a new history (which the client, whose window is just not
//     referred to, decodes as well). The cost is one message compressed without history after
//     each idle spell.
//   - ctxWindow, the client's window, belongs to the reader goroutine: the last bytes of the
//     compressed messages it inflated, the dictionary of the next one. The decompressor itself is
//     the pooled one of inflate, taken per message.
//
// Messages sent or received uncompressed do not enter either history (RFC 7692 §6).

// ctxDeflater compresses one connection's messages with a history. Pump goroutine only.
type ctxDeflater struct {
	fw    *flate.Writer // nil until the first message, and after release
	level int
	out   sliceWriter // fw's destination; out.b is set around each message
	used  bool        // a message was compressed since the last ping
}

// appendFrame appends a frame carrying payload compressed against the connection's history (RSV1
// set) to dst. Once a message has gone through the compressor the client must get it compressed —
// its history is now part of what later messages refer to — so this never falls back to a plain
// frame, except when the compressor's output is not what it should be: the history is then dropped
// (the next message starts a new one, which a client with a longer window decodes just as well) and
// the message goes plain.
func (z *ctxDeflater) appendFrame(dst []byte, op byte, payload []byte) []byte {
	if z.fw == nil {
		z.fw, _ = deflaters[z.level-1].Get().(*flate.Writer)
		if z.fw == nil {
			z.fw, _ = flate.NewWriter(&z.out, z.level) // the level is checked: no error
		} else {
			z.fw.Reset(&z.out)
		}
	}
	z.used = true
	bp := writeBufPool.Get().(*[]byte)
	z.out.b = (*bp)[:0]
	_, _ = z.fw.Write(payload) // a sliceWriter does not fail
	_ = z.fw.Flush()
	c := z.out.b
	z.out.b = nil
	if len(c) < 5 || !bytes.Equal(c[len(c)-4:], deflateTail) {
		z.fw.Reset(&z.out)
		dst = appendFrame(dst, op, payload)
	} else {
		c = c[:len(c)-4]
		n0 := len(dst)
		dst = appendHeader(dst, op, len(c))
		dst[n0] |= rsv1
		dst = append(dst, c...)
	}
	if cap(c) <= 64<<10 {
		*bp = c[:0]
		writeBufPool.Put(bp)
	}
	return dst
}

// on reports whether the connection compresses with the server's context takeover.
func (z *ctxDeflater) on() bool { return z.level != 0 }

// pinged is called as a keepalive ping is written: the compressor goes back to its pool if no
// message went through it since the ping before.
func (z *ctxDeflater) pinged() {
	if !z.used {
		z.release()
	}
	z.used = false
}

// release gives the compressor back to its pool; the history is dropped.
func (z *ctxDeflater) release() {
	if z.fw == nil {
		return
	}
	z.fw.Reset(io.Discard)
	deflaters[z.level-1].Put(z.fw)
	z.fw = nil
}

// ctxWindow is the client's LZ77 window as the reader last saw it. Reader goroutine only.
type ctxWindow struct {
	size int    // the client's window size (deflateParams.clientWindow); 0: no takeover
	b    []byte // the last size bytes at most of what was inflated; grown as needed
}

// inflate decompresses a message against the window (see inflateDict) and adds it to the window.
func (w *ctxWindow) inflate(z []byte, limit int64) ([]byte, error) {
	if w.size == 0 {
		return inflate(z, limit)
	}
	out, err := inflateDict(z, w.b, limit)
	if err != nil {
		return nil, err
	}
	w.add(out)
	return out, nil
}

// add appends p to the window, keeping its last size bytes. The window grows with what the client
// sent, up to size: a client that sends little costs little.
func (w *ctxWindow) add(p []byte) {
	if len(p) >= w.size {
		p = p[len(p)-w.size:]
	}
	if n := len(w.b) + len(p); n > cap(w.b) && cap(w.b) < w.size {
		grown := make([]byte, len(w.b), min(w.size, max(2*n, 1024)))
		copy(grown, w.b)
		w.b = grown
	}
	if drop := len(w.b) + len(p) - w.size; drop > 0 {
		w.b = w.b[:copy(w.b, w.b[drop:])]
	}
	w.b = append(w.b, p...)
}
