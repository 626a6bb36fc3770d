package yjs_test

import (
	"context"
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"ginws.dev/ginws"
	"ginws.dev/ginws/yjs"
	"ginws.dev/ginws/yjs/yproto"
)

// Every invalid field makes New panic with a *ginws.ConfigError naming that field.
func TestConfigRefusesInvalidFields(t *testing.T) {
	t.Parallel()
	ws := ginws.New(ginws.Config{Logger: quietLogger()})
	t.Cleanup(func() { _ = ws.Shutdown(context.Background()) })
	cases := []struct {
		field string
		cfg   yjs.Config
	}{
		{"Namespace", yjs.Config{Namespace: "a\x00b"}},
		{"AwarenessTimeout", yjs.Config{AwarenessTimeout: -time.Second}},
		{"LayerTimeout", yjs.Config{LayerTimeout: -1}},
		{"CompactAfter", yjs.Config{CompactAfter: -1}},
		{"MaxUpdateSize", yjs.Config{MaxUpdateSize: -1}},
		{"MaxDocumentSize", yjs.Config{MaxDocumentSize: -1}},
		{"MaxDocumentSize", yjs.Config{MaxDocumentSize: math.MaxInt}}, // twice it is the outbound limit
		{"MaxAwarenessClients", yjs.Config{MaxAwarenessClients: -1}},
		{"MaxClientsPerConn", yjs.Config{MaxClientsPerConn: -1}},
		{"MaxAwarenessStateSize", yjs.Config{MaxAwarenessStateSize: -1}},
		{"MaxAwarenessTotalSize", yjs.Config{MaxAwarenessTotalSize: -1}},
	}
	for _, c := range cases {
		t.Run(c.field, func(t *testing.T) {
			defer func() {
				p := recover()
				err, _ := p.(error)
				var ce *ginws.ConfigError
				if !errors.As(err, &ce) {
					t.Fatalf("New panicked with %#v, want a *ginws.ConfigError", p)
				}
				if want := "yjs.Config." + c.field; ce.Field != want || ce.Rule == "" || !strings.HasPrefix(ce.Error(), want+" = ") {
					t.Fatalf("ConfigError %+v (%q), want the field %s and a rule", ce, ce.Error(), want)
				}
			}()
			yjs.New(ws, c.cfg)
		})
	}
}

// The zero Config works, and so do the negative durations whose meaning is documented.
func TestConfigZeroAndDocumentedNegatives(t *testing.T) {
	t.Parallel()
	for name, cfg := range map[string]yjs.Config{
		"zero": {},
		"negative SaveDelay, UnloadDelay, ResyncInterval": {SaveDelay: -1, UnloadDelay: -time.Second, ResyncInterval: -1},
	} {
		t.Run(name, func(t *testing.T) {
			a := newApp(t, nil, cfg)
			c1, _ := a.dial(t, "/yjs/cfg")
			c2, _ := a.dial(t, "/yjs/cfg")
			c1.send(yproto.AppendSyncUpdate(nil, fxHello))
			if m := c2.next(yproto.MsgSync); m.SyncType != yproto.SyncUpdate {
				t.Fatalf("relayed sync type %d", m.SyncType)
			}
		})
	}
}
