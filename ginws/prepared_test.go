package ginws_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"ginws.dev/ginws"
	"ginws.dev/ginws/wstest"
)

// prepared greets every connection with the same two prepared frames, and sends a big prepared
// frame (a 64-bit length header) when asked.
var (
	greetBinary = ginws.PrepareBinary([]byte{0, 1, 2, 0xff})
	greetText   = mustPrepareText("héllo")
	bigBinary   = ginws.PrepareBinary(bytes.Repeat([]byte{7}, 70_000))
)

func mustPrepareText(s string) *ginws.PreparedMessage {
	p, err := ginws.PrepareText(s)
	if err != nil {
		panic(err)
	}
	return p
}

type prepared struct{ ginws.WebsocketConsumer }

func (p *prepared) Connect(ctx context.Context) error {
	if err := p.SendPrepared(greetBinary); !errors.Is(err, ginws.ErrNotAccepted) {
		return err // sends before Accept are refused, prepared or not
	}
	if err := p.Accept(); err != nil {
		return err
	}
	if err := p.SendPrepared(greetBinary); err != nil {
		return err
	}
	return p.SendPrepared(greetText)
}

func (p *prepared) Receive(ctx context.Context, f ginws.ClientMessage) error {
	return p.SendPrepared(bigBinary)
}

func TestSendPrepared(t *testing.T) {
	t.Parallel()
	a := newApp(t, ginws.Config{ReadLimit: 1 << 20}, func() ginws.Consumer { return &prepared{} })
	ctx := testCtx(t)
	comms := make([]*wstest.Communicator, 3)
	for i := range comms {
		comms[i] = a.ts.Communicator("/ws/x")
		comms[i].MustConnect(ctx)
	}
	for _, c := range comms {
		b, err := c.ReceiveBytes(ctx)
		if err != nil || !bytes.Equal(b, []byte{0, 1, 2, 0xff}) {
			t.Fatalf("prepared binary = %v, %v", b, err)
		}
		s, err := c.ReceiveText(ctx)
		if err != nil || s != "héllo" {
			t.Fatalf("prepared text = %q, %v", s, err)
		}
		if err := c.SendText(ctx, "big"); err != nil {
			t.Fatal(err)
		}
		b, err = c.ReceiveBytes(ctx)
		if err != nil || len(b) != 70_000 || b[69_999] != 7 {
			t.Fatalf("big prepared binary: %d bytes, %v", len(b), err)
		}
	}
	if _, err := ginws.PrepareText("\xff"); err == nil || !strings.Contains(err.Error(), "UTF-8") {
		t.Fatalf("PrepareText of invalid UTF-8: %v", err)
	}
}
