package yjs_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"testing"

	"ginws.dev/ginws/redislayer/djangotest"
	"ginws.dev/ginws/yjs"
	"ginws.dev/ginws/yjs/yproto"
)

// A real Django Channels process (Daphne, channels_redis 4) on the same Redis does what ypy's
// send_doc_update does — group_send(room group, {"type": "doc_update", "update": bytes}) — and
// the Go server's clients get the update; the Django consumer, joined to the room's group, sees
// the Go clients' updates as bytes.
func TestDjangoSendDocUpdate(t *testing.T) {
	t.Parallel()
	prefix := redisPrefix()
	p := newRedisProcess(t, prefix)
	d := djangotest.Start(t, djangotest.Options{RedisHosts: []string{redisURL}, Prefix: "asgi" + prefix})
	a := newApp(t, p.layer, yjs.Config{Store: p.store})
	c, _ := a.dial(t, "/yjs/from/django")

	// The group name Django computes with hashlib is the one the Go server uses.
	sum := sha256.Sum256([]byte("from/django"))
	group := "yjs." + hex.EncodeToString(sum[:])[:40]
	if group != yjs.GroupName("from/django") {
		t.Fatalf("GroupName = %q, Python's recipe gives %q", yjs.GroupName("from/django"), group)
	}

	dj, err := djangotest.Dial(ctxT(t), d.WSURL("/ws/interop/"+group+"/"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer dj.Close()
	if err := dj.GroupSend(ctxT(t), group, map[string]any{"type": "doc_update", "update": fxHello}); err != nil {
		t.Fatal(err)
	}
	m := c.next(yproto.MsgSync)
	if m.SyncType != yproto.SyncUpdate || !bytes.Equal(m.Payload, fxHello) {
		t.Fatalf("client got type %d %x", m.SyncType, m.Payload)
	}
	// The Django consumer is in the group too: it saw its own doc_update, then sees a Go
	// client's update with the bytes intact.
	c.send(yproto.AppendSyncUpdate(nil, fxWorld))
	for {
		ev, err := dj.Event(ctxT(t))
		if err != nil {
			t.Fatal(err)
		}
		if ev.Type() == "yjs.update" {
			if u, _ := ev.Bytes("update"); !bytes.Equal(u, fxWorld) {
				t.Fatalf("Django saw update %x", u)
			}
			break
		}
	}
}
