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
	if r.Scope().Param("room") == "big" {
		return r.Accept(ginws.WithReadLimit(64<<10), ginws.WithOutboundLimit(1<<20))
	}
	return r.Accept()
}

func (r *roomy) Receive(ctx context.Context, f ginws.Frame) error {
	if !f.Binary && f.Text() == "blob" {
		return r.SendBinary(bytes.Repeat([]byte{1}, 100_000))
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
	if err := small.SendBytes(ctx, msg); err != nil {
		t.Fatal(err)
	}
	if code := waitClosed(t, small); code != ginws.CloseMessageTooBig {
		t.Fatalf("10 KB over the server's 1 KiB ReadLimit: close code %d, want 1009", code)
	}
	slow := a.ts.Communicator("/ws/small")
	slow.MustConnect(ctx)
	if err := slow.SendText(ctx, "blob"); err != nil {
		t.Fatal(err)
	}
	if code := waitClosed(t, slow); code != ginws.CloseSlowClient {
		t.Fatalf("100 KB over the server's 4 KiB OutboundLimit: close code %d, want %d", code, ginws.CloseSlowClient)
	}
}
