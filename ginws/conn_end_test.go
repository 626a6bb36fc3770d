package ginws_test

import (
	"context"
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
