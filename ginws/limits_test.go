package ginws_test

import (
	"bytes"
	"context"
	"testing"

	"ginws.dev/ginws"
)

// roomy accepts with bigger limits than the server's in room "big", and with the server's
// elsewhere; it echoes binary frames and, on "blob", sends 100 KB.
type roomy struct{ ginws.WebsocketConsumer }

func (r *roomy) Connect(ctx context.Context) error {
	switch r.Scope().Param("room") {
	case "big":
		return r.Accept(ginws.WithReadLimit(64<<10), ginws.WithOutboundLimit(1<<20))
	case "final":
		return r.Accept(ginws.WithTooBigClose(4413, "update too large"))
	case "badcode":
		return r.Accept(ginws.WithTooBigClose(1006, "not sendable"))
	}
	return r.Accept()
}

func (r *roomy) Receive(ctx context.Context, f ginws.ClientMessage) error {
	if !f.Binary && f.Text() == "blob" {
		return r.SendBinary(bytes.Repeat([]byte{1}, 100_000))
	}
	if !f.Binary && f.Text() == "burst" {
		for range 10 {
			if err := r.SendBinary(bytes.Repeat([]byte{3}, 1000)); err != nil {
				return err
			}
		}
		return nil
	}
	return r.SendBinary(f.Data)
}

func TestPerConnectionLimits(t *testing.T) {
	a := newApp(t, ginws.Config{ReadLimit: 1024, OutboundLimit: 4096}, func() ginws.Consumer { return &roomy{} })
	ctx := testCtx(t)

	big := a.ts.Communicator("/ws/big")
	big.MustConnect(ctx)
	msg := bytes.Repeat([]byte{2}, 10_000)
	if err := big.SendBytes(ctx, msg); err != nil {
		t.Fatal(err)
	}
	if got, err := big.ReceiveBytes(ctx); err != nil || !bytes.Equal(got, msg) {
		t.Fatalf("echo of 10 KB under WithReadLimit(64 KiB): %d bytes, %v", len(got), err)
	}
	if err := big.SendText(ctx, "blob"); err != nil {
		t.Fatal(err)
	}
	if got, err := big.ReceiveBytes(ctx); err != nil || len(got) != 100_000 {
		t.Fatalf("100 KB under WithOutboundLimit(1 MiB): %d bytes, %v", len(got), err)
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
	if err := large.SendText(ctx, "blob"); err != nil {
		t.Fatal(err)
	}
	if err := large.SendBytes(ctx, []byte("after")); err != nil {
		t.Fatal(err)
	}
	if got, err := large.ReceiveBytes(ctx); err != nil || string(got) != "after" {
		t.Fatalf("after a 100 KB message over the 4 KiB OutboundLimit the connection must go on: %q %v", got, err)
	}
	if n := a.srv.Stats().TooLarge; n != 1 {
		t.Fatalf("Stats.TooLarge = %d, want 1", n)
	}
	a.logs.waitFor(t, "size=100010")

	// Messages that pile up past the limit are a slow client.
	slow := a.ts.Communicator("/ws/small")
	slow.MustConnect(ctx)
	if err := slow.SendText(ctx, "burst"); err != nil {
		t.Fatal(err)
	}
	if code := waitClosed(t, slow); code != ginws.CloseSlowClient {
		t.Fatalf("10 KB queued over the server's 4 KiB OutboundLimit: close code %d, want %d", code, ginws.CloseSlowClient)
	}
}

func TestTooBigCloseCode(t *testing.T) {
	a := newApp(t, ginws.Config{ReadLimit: 1024}, func() ginws.Consumer { return &roomy{} })
	ctx := testCtx(t)
	c := a.ts.Communicator("/ws/final")
	c.MustConnect(ctx)
	_ = c.SendBytes(ctx, make([]byte, 2048)) // may fail once the server closed mid-frame
	code, reason, err := c.WaitClosed(ctx)
	if err != nil || code != 4413 || reason != "update too large" {
		t.Fatalf("over the read limit with WithTooBigClose(4413): %d %q %v", code, reason, err)
	}
	bad := a.ts.Communicator("/ws/badcode")
	res, err := bad.Connect(ctx)
	if err != nil || res.Accepted || res.Status != 500 {
		t.Fatalf("Accept with an unsendable close code must fail the handshake (500): %+v %v", res, err)
	}
}
