package ginws_test

import (
	"context"
	"errors"
	"strconv"
	"testing"
	"time"

	"ginws.dev/ginws"
)

// recorder records the messages it handles, slowly, and its Disconnect code.
type recorder struct {
	ginws.WebsocketConsumer
	got   chan string
	codes codes
}

func (r *recorder) Receive(ctx context.Context, m ginws.ClientMessage) error {
	time.Sleep(20 * time.Millisecond) // the client is gone before the last ones are handled
	r.got <- m.Text()
	return nil
}

func (r *recorder) Disconnect(ctx context.Context, code int) { r.codes <- code }

// A client that vanishes without a close frame still has the messages it sent handled: the last
// chat line typed before a tab closes must still reach the room. Disconnect gets 1006.
func TestMessagesBeforeAVanishedClientAreHandled(t *testing.T) {
	got, cs := make(chan string, 10), make(codes, 1)
	a := newApp(t, ginws.Config{}, func() ginws.Consumer { return &recorder{got: got, codes: cs} })
	c := dialRaw(t, a.ts.WSURL("/ws/x"))
	c.write(textFrame("one"), textFrame("two"), textFrame("three"))
	c.nc.Close() // no close frame
	for _, want := range []string{"one", "two", "three"} {
		select {
		case s := <-got:
			if s != want {
				t.Fatalf("handled %q, want %q", s, want)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("%q was never handled", want)
		}
	}
	if code := cs.wait(t); code != ginws.CloseAbnormal {
		t.Fatalf("Disconnect code %d, want 1006", code)
	}
}

// sendUntilRefused sends numbered text frames from a goroutine of its own, as fast as it can,
// until a send is refused, and reports how many were accepted and the error that stopped it.
type sendUntilRefused struct {
	ginws.WebsocketConsumer
	accepted chan<- sendResult
}

type sendResult struct {
	n   int
	err error
}

func (s *sendUntilRefused) Connect(ctx context.Context) error {
	if err := s.Accept(); err != nil {
		return err
	}
	go func() {
		i := 0
		for {
			if err := s.SendText(strconv.Itoa(i)); err != nil {
				s.accepted <- sendResult{i, err}
				return
			}
			i++
		}
	}()
	return nil
}

// TestSendAcceptedIsWrittenWhenTheClientCloses: while the client closes the connection, a
// consumer keeps sending from another goroutine. Every send that returned nil reaches the client,
// in order, before the answer to its close; the sends after that are refused (ErrClosed), not
// queued behind the close frame and dropped. (Before the fix, one run: 12364 sends returned nil,
// the client got 10661.) The outbound limit holds whatever the sender gets ahead of the pump, so
// the client is never closed as slow, which would drop queued frames by design.
func TestSendAcceptedIsWrittenWhenTheClientCloses(t *testing.T) {
	t.Parallel()
	accepted := make(chan sendResult, 1)
	a := newApp(t, ginws.Config{OutboundLimit: 256 << 20}, func() ginws.Consumer { return &sendUntilRefused{accepted: accepted} })
	for round := range 30 {
		c := dialRaw(t, a.ts.WSURL("/ws/x"))
		got := 0
		for closed := false; ; {
			f, err := c.read(30 * time.Second)
			if err != nil {
				t.Fatalf("round %d, after %d frames: %v", round, got, err)
			}
			if f.op == 0x8 {
				if code := f.closeCode(); code != ginws.CloseNormal {
					t.Fatalf("round %d: closed with %d %q, want the answer to the client's 1000", round, code, f.payload[2:])
				}
				break
			}
			if string(f.payload) != strconv.Itoa(got) {
				t.Fatalf("round %d: frame %q, want %d", round, f.payload, got)
			}
			if got++; got == 100 && !closed {
				c.write(closeFrame(ginws.CloseNormal))
				closed = true
			}
		}
		res := <-accepted
		if !errors.Is(res.err, ginws.ErrClosed) {
			t.Fatalf("round %d: the sends stopped with %v, want ErrClosed", round, res.err)
		}
		if res.n != got {
			t.Fatalf("round %d: %d sends returned nil, the client got %d of them", round, res.n, got)
		}
		c.expectClosed(10 * time.Second)
	}
}
