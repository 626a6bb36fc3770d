package ginws_test

import (
	"bytes"
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"ginws.dev/ginws"
)

// slowEcho echoes, taking its time, so that the frames after a message are read before the message
// is handled.
type slowEcho struct{ echo }

func (s *slowEcho) Receive(ctx context.Context, f ginws.ClientMessage) error {
	time.Sleep(30 * time.Millisecond)
	return s.echo.Receive(ctx, f)
}

// A valid message followed by a broken frame still gets its answer before the 1002 close
// (Autobahn 3.2-3.4, 4.1.3-4.1.5, 4.2.3-4.2.5, 5.15: the reply must not be overtaken by the close).
func TestReplyBeforeProtocolErrorClose(t *testing.T) {
	t.Parallel()
	broken := map[string][]byte{
		"reserved bit":           frame(true, 0x20, 0x1, []byte("Hello")),
		"reserved opcode":        frame(true, 0, 0x3, nil),
		"reserved control op":    frame(true, 0, 0xb, nil),
		"orphan continuation":    frame(true, 0, 0x0, []byte("x")),
		"fragmented ping":        frame(false, 0, 0x9, nil),
		"text inside a fragment": append(frame(false, 0, 0x1, []byte("a")), frame(true, 0, 0x1, []byte("b"))...),
	}
	cs := make(codes, len(broken))
	a := newApp(t, ginws.Config{}, func() ginws.Consumer { return &slowEcho{echo{codes: cs}} })
	for name, bad := range broken {
		c := dialRaw(t, a.ts.WSURL("/ws/x"))
		c.write(textFrame("Hello"), bad, frame(true, 0, 0x9, []byte("ping")))
		f, err := c.read(5 * time.Second)
		if err != nil || f.op != 0x1 || string(f.payload) != "Hello" {
			t.Fatalf("%s: the reply to the valid message must come first: %+v %v", name, f, err)
		}
		f, err = c.read(5 * time.Second)
		if err != nil || f.op != 0x8 || f.closeCode() != ginws.CloseProtocolError {
			t.Fatalf("%s: then a 1002 close: %+v %v", name, f, err)
		}
		c.write(closeFrame(ginws.CloseProtocolError))
		c.expectClosed(5 * time.Second)
		if code := cs.wait(t); code != ginws.CloseProtocolError {
			t.Fatalf("%s: Disconnect code %d", name, code)
		}
	}
}

// After closing for a protocol error the server waits for the client's answer to its close
// frame (up to CloseTimeout) and closes the TCP connection as soon as it arrives.
func TestProtocolErrorCloseWaitsForTheClient(t *testing.T) {
	t.Parallel()
	a := newApp(t, ginws.Config{CloseTimeout: 20 * time.Second}, func() ginws.Consumer { return &echo{} })
	c := dialRaw(t, a.ts.WSURL("/ws/x"))
	c.write(frame(true, 0, 0x0, []byte("orphan")))
	f, err := c.read(5 * time.Second)
	if err != nil || f.closeCode() != ginws.CloseProtocolError {
		t.Fatalf("want a 1002 close: %+v %v", f, err)
	}
	// The client takes its time to answer: the connection stays open meanwhile.
	time.Sleep(400 * time.Millisecond)
	_ = c.nc.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	var b [1]byte
	if _, err := c.br.Read(b[:]); !isTimeout(err) {
		t.Fatalf("the server must wait for the client's close, not close the connection: %v", err)
	}
	c.write(closeFrame(ginws.CloseProtocolError))
	c.expectClosed(5 * time.Second)
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// A message far over the read limit gets a 1009 close frame the client can read — not a reset
// that destroys it — however much of the message the client is still sending.
func TestOverLimitMessageCloseFrameArrives(t *testing.T) {
	t.Parallel()
	a := newApp(t, ginws.Config{}, func() ginws.Consumer { return &echo{} })
	for _, size := range []int{4 << 20, 8 << 20, 16 << 20} {
		c := dialRaw(t, a.ts.WSURL("/ws/x"))
		msg := frame(true, 0, 0x2, bytes.Repeat([]byte{0xab}, size))
		sent := make(chan error, 1)
		go func() {
			_, err := c.nc.Write(msg) // the whole message, as a client that does not read meanwhile
			if err == nil {
				_, err = c.nc.Write(closeFrame(ginws.CloseMessageTooBig))
			}
			sent <- err
		}()
		f, err := c.read(20 * time.Second)
		if err != nil || f.op != 0x8 || f.closeCode() != ginws.CloseMessageTooBig || string(f.payload[2:]) != "message too big" {
			t.Fatalf("%d MiB: want the 1009 close frame with its reason: %+v %v", size>>20, f, err)
		}
		if err := <-sent; err != nil {
			t.Fatalf("%d MiB: the server must read (and discard) the rest of the message: %v", size>>20, err)
		}
		c.expectClosed(5 * time.Second)
	}
}

// Invalid UTF-8 fails the connection at the first bad piece: in a fragment before the message's
// last one (Autobahn 6.4.1/6.4.2), and in a chop before the frame's end (6.4.3/6.4.4).
func TestInvalidUTF8FailsFast(t *testing.T) {
	t.Parallel()
	a := newApp(t, ginws.Config{}, func() ginws.Consumer { return &echo{} })
	bad := []byte{0xf4, 0x90, 0x80, 0x80} // beyond U+10FFFF

	c := dialRaw(t, a.ts.WSURL("/ws/x"))
	c.write(frame(false, 0, 0x1, []byte("κόσμε")), frame(false, 0, 0x0, bad)) // no final fragment
	if f, err := c.read(5 * time.Second); err != nil || f.closeCode() != ginws.CloseInvalidPayload {
		t.Fatalf("fragments: want a 1007 close before the last fragment: %+v %v", f, err)
	}

	c = dialRaw(t, a.ts.WSURL("/ws/x"))
	whole := frame(true, 0, 0x1, append(append([]byte("κόσμε"), bad...), "edited"...))
	c.write(whole[:len(whole)-len("edited")]) // the frame's last chop never comes
	if f, err := c.read(5 * time.Second); err != nil || f.closeCode() != ginws.CloseInvalidPayload {
		t.Fatalf("chops: want a 1007 close before the frame's end: %+v %v", f, err)
	}
}
