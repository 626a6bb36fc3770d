package ginws

import (
	"bytes"
	"context"
	"net"
	"testing"
	"time"

	"ginws.dev/ginws/layer"
)

// relayOf must recognize RelayJSON's handlers of both build signatures, and nothing else.
func TestRelayOf(t *testing.T) {
	a := RelayJSON(func(ev layer.Message) (any, error) { return nil, nil })
	b := RelayJSON(func(ev layer.Message, pos layer.Position) (any, error) { return nil, nil })
	if relayOf(a) == nil || relayOf(b) == nil || relayOf(a) == relayOf(b) {
		t.Fatalf("relayOf: %p %p", relayOf(a), relayOf(b))
	}
	called := false
	other := func(ctx context.Context, ev layer.Message) error { called = true; return nil }
	if relayOf(other) != nil || relayOf(nil) != nil || called {
		t.Fatal("relayOf took (or called) a handler that is not a relay")
	}
}

// recordConn is a net.Conn that keeps what is written to it and the size of each write.
type recordConn struct {
	net.Conn // nil: only Write and SetWriteDeadline are called
	buf      bytes.Buffer
	writes   []int
}

func (r *recordConn) Write(b []byte) (int, error) {
	r.writes = append(r.writes, len(b))
	return r.buf.Write(b)
}

func (r *recordConn) SetWriteDeadline(time.Time) error { return nil }

// A batch larger than OutboundLimit — relay frames are counted at their true size only once the
// pump encodes them — is written in parts of about OutboundLimit, so that the connection's write
// buffer does not grow to the batch's size; the bytes and their order are the same.
func TestWriteSplitsLargeBatches(t *testing.T) {
	const limit = 1 << 20
	rec := &recordConn{}
	c := &Conn{srv: &Server{cfg: Config{WriteTimeout: time.Second}}, nc: rec, outboundLimit: limit}
	var out []outFrame
	var want []byte
	for i := range 40 {
		size := 900 << 10
		if i%3 == 1 {
			size = 100 // small frames between the large ones
		}
		p := PrepareBinary(bytes.Repeat([]byte{byte(i)}, size))
		out = append(out, outFrame{op: opBinary, prep: p})
		want = append(want, p.frame...)
	}
	out = append(out, outFrame{op: opDropped}) // a dropped relay frame writes nothing
	if err := c.write(out, monoNow()); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(rec.buf.Bytes(), want) {
		t.Fatalf("wrote %d bytes, want the %d bytes of the frames in order", rec.buf.Len(), len(want))
	}
	for _, n := range rec.writes {
		if n > limit+900<<10+maxHeaderLen {
			t.Fatalf("one write of %d bytes, over OutboundLimit (%d) and one frame", n, limit)
		}
	}
	if len(rec.writes) < len(want)/(2*limit) {
		t.Fatalf("%d writes for %d bytes", len(rec.writes), len(want))
	}
	if got := c.srv.writes.Load(); got != uint64(len(rec.writes)) {
		t.Fatalf("Stats.Writes counted %d, the socket saw %d", got, len(rec.writes))
	}
	t.Logf("%d bytes in %d writes", len(want), len(rec.writes))

	// A batch under the limit is still one write.
	rec.writes = nil
	c.srv.writes.Store(0)
	small := []outFrame{{op: opText, data: []byte("a")}, {op: opText, data: []byte("b")}}
	if err := c.write(small, monoNow()); err != nil || len(rec.writes) != 1 {
		t.Fatalf("two small frames: %d writes (%v), want 1", len(rec.writes), err)
	}
}
