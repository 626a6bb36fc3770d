package middleware_test

import (
	"errors"
	"net/http"
	"testing"

	"ginws.dev/ginws"
	"ginws.dev/ginws/wstest"
	"ginws.dev/middleware"
)

// TestAllowedHostsRefusesRebinding: a page on a name re-pointed at the server sends Host and Origin
// that agree, which Mount's same-origin default accepts; AllowedHosts refuses it with 400 before
// the upgrade, and still lets the server's real name through.
func TestAllowedHostsRefusesRebinding(t *testing.T) {
	t.Parallel()
	evil := []wstest.Option{wstest.Header("Host", "evil.example"), wstest.Origin("http://evil.example")}

	open := newHarness(t)
	open.engine.GET("/ws", open.mount(func(p *probe) map[string]any { return map[string]any{} }))
	ots := open.start(t)
	open.accepted(t, ots.Communicator("/ws", evil...)) // the hole AllowedHosts closes

	h := newHarness(t)
	h.engine.Use(middleware.AllowedHosts("127.0.0.1", ".chat.example"))
	h.engine.GET("/ws", h.mount(func(p *probe) map[string]any { return map[string]any{"host": p.Scope().Host()} }))
	ts := h.start(t)
	h.refused(t, ts.Communicator("/ws", evil...), http.StatusBadRequest)
	h.refused(t, ts.Communicator("/ws", wstest.Header("Host", "chat.example.evil.example"), wstest.Origin("http://chat.example.evil.example")), http.StatusBadRequest)
	h.refused(t, ts.Communicator("/ws", wstest.Header("Host", "evilchat.example"), wstest.Origin("http://evilchat.example")), http.StatusBadRequest)
	h.accepted(t, ts.Communicator("/ws")) // 127.0.0.1:port, its own origin
	h.accepted(t, ts.Communicator("/ws", wstest.Header("Host", "EU.Chat.Example:8443"), wstest.Origin("http://eu.chat.example:8443")))
	h.accepted(t, ts.Communicator("/ws", wstest.Header("Host", "chat.example."), wstest.Origin("http://chat.example.")))
}

func TestAllowedHostsAny(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.engine.GET("/ws", middleware.AllowedHosts("*"), h.mount(func(p *probe) map[string]any { return map[string]any{} }))
	ts := h.start(t)
	h.accepted(t, ts.Communicator("/ws", wstest.Header("Host", "whatever.example"), wstest.Origin("http://whatever.example")))
}

func TestAllowedHostsConfig(t *testing.T) {
	t.Parallel()
	for _, hosts := range [][]string{nil, {""}, {"https://chat.example"}, {"chat.example/ws"}} {
		func() {
			defer func() {
				var ce *ginws.ConfigError
				if p := recover(); p == nil {
					t.Errorf("AllowedHosts(%q) did not panic", hosts)
				} else if err, ok := p.(error); !ok || !errors.As(err, &ce) {
					t.Errorf("AllowedHosts(%q) panicked with %v, want a *ginws.ConfigError", hosts, p)
				}
			}()
			middleware.AllowedHosts(hosts...)
		}()
	}
}
