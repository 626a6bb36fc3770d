package ginws_test

import (
	"bytes"
	"context"
	"net/http"
	"testing"

	"github.com/gin-gonic/gin"

	"ginws.dev/ginws"
)

// tenfold answers every message with ten copies of it in one binary message.
func tenfold(ctx context.Context, c *funcConsumer, f ginws.ClientMessage) error {
	return c.SendBinary(bytes.Repeat(f.Data, 10))
}

func TestPerConnectionLimits(t *testing.T) {
	t.Parallel()
	// The server's limits are 1 KiB in and 4 KiB queued out. /ws/:room keeps them; /raised
	// accepts with 64 KiB in and 1 MiB out; /burst sends ten 1 KB messages for every message.
	a := newApp(t, ginws.Config{ReadLimit: 1024, OutboundLimit: 4096}, consumer(funcConsumer{receive: tenfold}),
		func(r *gin.Engine, s *ginws.Server) {
			r.GET("/raised", s.Mount(consumer(funcConsumer{
				connect: acceptWith(ginws.WithReadLimit(64<<10), ginws.WithOutboundLimit(1<<20)),
				receive: tenfold,
			})))
			r.GET("/burst", s.Mount(consumer(funcConsumer{receive: func(ctx context.Context, c *funcConsumer, f ginws.ClientMessage) error {
				for range 10 {
					if err := c.SendBinary(bytes.Repeat([]byte{3}, 1000)); err != nil {
						return err
					}
				}
				return nil
			}})))
		})
	ctx := testCtx(t)
	msg := bytes.Repeat([]byte{2}, 10_000)

	raised := a.ts.Communicator("/raised")
	raised.MustConnect(ctx)
	if err := raised.SendBytes(ctx, msg); err != nil {
		t.Fatal(err)
	}
	if got, err := raised.ReceiveBytes(ctx); err != nil || !bytes.Equal(got, bytes.Repeat(msg, 10)) {
		t.Fatalf("10 KB in under WithReadLimit(64 KiB), 100 KB out under WithOutboundLimit(1 MiB): %d bytes back, %v", len(got), err)
	}

	// The server's limits still hold for connections that did not raise them.
	small := a.ts.Communicator("/ws/small")
	small.MustConnect(ctx)
	// The server may close after the first bytes of the frame, so the rest of the write can fail.
	_ = small.SendBytes(ctx, msg)
	if code := waitClosed(t, small); code != ginws.CloseMessageTooBig {
		t.Fatalf("10 KB over the server's 1 KiB ReadLimit: close code %d, want 1009", code)
	}

	// One message larger than the whole outbound limit is not a slow client: it is dropped for
	// this connection, counted, and the connection goes on.
	large := a.ts.Communicator("/ws/small")
	large.MustConnect(ctx)
	if err := large.SendBytes(ctx, msg[:1000]); err != nil { // 10 KB back
		t.Fatal(err)
	}
	if err := large.SendBytes(ctx, []byte("after")); err != nil {
		t.Fatal(err)
	}
	if got, err := large.ReceiveBytes(ctx); err != nil || string(got) != string(bytes.Repeat([]byte("after"), 10)) {
		t.Fatalf("after a 10 KB message over the 4 KiB OutboundLimit the connection must go on: %q %v", got, err)
	}
	if n := a.srv.Stats().TooLarge; n != 1 {
		t.Fatalf("Stats.TooLarge = %d, want 1", n)
	}
	a.logs.waitFor(t, "size=10010") // 10 000 bytes and room for the frame header

	// Messages that pile up past the limit are a slow client.
	slow := a.ts.Communicator("/burst")
	slow.MustConnect(ctx)
	if err := slow.SendText(ctx, "go"); err != nil {
		t.Fatal(err)
	}
	if code := waitClosed(t, slow); code != ginws.CloseSlowClient {
		t.Fatalf("10 KB queued over the server's 4 KiB OutboundLimit: close code %d, want %d", code, ginws.CloseSlowClient)
	}
}

func TestTooBigClose(t *testing.T) {
	t.Parallel()
	t.Run("WithTooBigClose(4413) → 4413 for a message over the limit", func(t *testing.T) {
		t.Parallel()
		a := newApp(t, ginws.Config{ReadLimit: 1024}, consumer(funcConsumer{connect: acceptWith(ginws.WithTooBigClose(4413, "update too large"))}))
		ctx := testCtx(t)
		c := a.ts.Communicator("/ws/x")
		c.MustConnect(ctx)
		_ = c.SendBytes(ctx, make([]byte, 2048)) // may fail once the server closed mid-frame
		code, reason, err := c.WaitClosed(ctx)
		if err != nil || code != 4413 || reason != "update too large" {
			t.Fatalf("over the read limit with WithTooBigClose(4413): %d %q %v", code, reason, err)
		}
	})
	t.Run("WithTooBigClose(1006) → the handshake fails with 500", func(t *testing.T) {
		t.Parallel()
		a := newApp(t, ginws.Config{}, consumer(funcConsumer{connect: acceptWith(ginws.WithTooBigClose(1006, "not sendable"))}))
		res, err := a.ts.Communicator("/ws/x").Connect(testCtx(t))
		if err != nil || res.Accepted || res.Status != http.StatusInternalServerError {
			t.Fatalf("Accept with an unsendable close code must fail the handshake (500): %+v %v", res, err)
		}
	})
}
