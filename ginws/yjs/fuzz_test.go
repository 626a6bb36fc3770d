package yjs_test

import (
	"testing"

	"ginws.dev/ginws/yjs"
	"ginws.dev/ginws/yjs/yproto"
)

// FuzzClientFrames sends arbitrary binary frames to a real server: whatever a client sends, the
// server either handles it and keeps answering, or closes that connection with a code that says
// why — and goes on serving the room's other clients.
func FuzzClientFrames(f *testing.F) {
	for _, seed := range [][]byte{
		yproto.AppendSyncStep1(nil, []byte{0}),
		yproto.AppendSyncStep1(nil, fxSVHello),
		yproto.AppendSyncStep2(nil, fxHello),
		yproto.AppendSyncUpdate(nil, fxWorld),
		yproto.AppendSyncUpdate(nil, fxDeleteHello),
		awarenessMsg(1, 1, `{"a":1}`),
		awarenessMsg(1, 2, `null`),
		yproto.AppendQueryAwareness(nil),
		yproto.AppendPermissionDenied(nil, "x"),
		{}, {0}, {0, 2}, {0, 2, 5, 1, 1, 1, 1, 1}, {1, 3, 1, 1, 1}, {9},
		{0, 2, 0xff, 0xff, 0xff, 0xff, 0x0f},
	} {
		f.Add(seed)
	}
	a := newApp(f, nil, yjs.Config{MaxDocumentSize: 1 << 16})
	watcher, _ := a.dial(f, "/yjs/fuzz")
	allowed := map[int]bool{1003: true, 1007: true, 1008: true, 1009: true, yjs.CloseDocumentTooLarge: true}
	f.Fuzz(func(t *testing.T, frame []byte) {
		c, _ := a.dial(t, "/yjs/fuzz")
		// A round trip tells "handled" from "closed" (the second send fails if the server has
		// already closed).
		_ = c.SendBytes(ctxT(t), frame)
		_ = c.SendBytes(ctxT(t), yproto.AppendSyncStep1(nil, []byte{0}))
		for {
			b, err := c.ReceiveBytes(ctxT(t))
			if err != nil {
				code, _, werr := c.WaitClosed(ctxT(t))
				if werr != nil || !allowed[code] {
					t.Fatalf("frame %x: connection ended with %d (%v / %v)", frame, code, err, werr)
				}
				break
			}
			if m, err := yproto.Decode(b); err == nil && m.Type == yproto.MsgSync && m.SyncType == yproto.SyncStep2 {
				break
			}
		}
		// The room still works for others.
		c2, _ := a.dial(t, "/yjs/fuzz")
		c2.send(yproto.AppendSyncStep1(nil, []byte{0}))
		for {
			m := c2.nextAny()
			if m.Type == yproto.MsgSync && m.SyncType == yproto.SyncStep2 {
				break
			}
		}
		_ = c2.Disconnect(ctxT(t))
		_ = c.Disconnect(ctxT(t))
		for drained := false; !drained; {
			drained = watcher.ReceiveNothing(ctxT(t), 0) == nil
			if !drained {
				_, _ = watcher.Receive(ctxT(t))
			}
		}
	})
}
