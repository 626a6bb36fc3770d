package middleware_test

import (
	"log/slog"
	"net/http"
	"testing"

	"ginws.dev/ginws/wstest"
	"ginws.dev/middleware"
)

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

// The cases of Django Channels' tests/security/test_websocket.py, plus the missing-origin rule.
func TestOriginValidatorChannelsCases(t *testing.T) {
	t.Parallel()
	none := "\x00none" // marks "send no Origin header"
	cases := []struct {
		allowed      []string
		allowMissing bool
		origin       string
		ok           bool
	}{
		{[]string{"allowed-domain.com"}, false, "http://allowed-domain.com", true},
		{[]string{"allowed-domain.com"}, false, "http://bad-domain.com", false},
		{[]string{"*.allowed-domain.com"}, false, "http://allowed-domain.com", false}, // not a pattern we know
		{[]string{".allowed-domain.com"}, false, "http://www.allowed-domain.com", true},
		{[]string{".allowed-domain.com"}, false, "http://allowed-domain.com", true},
		{[]string{".allowed-domain.com"}, false, "http://evil-allowed-domain.com", false},
		{[]string{"http://allowed-domain.com"}, false, "http://allowed-domain.com", true},
		{[]string{"http://allowed-domain.com"}, false, "https://bad-domain.com:443", false},
		{[]string{"http://allowed-domain.com"}, false, "https://allowed-domain.com", false},  // scheme differs
		{[]string{"http://allowed-domain.com"}, false, "http://allowed-domain.com:80", true}, // default port
		{[]string{"https://allowed-domain.com:8443"}, false, "https://allowed-domain.com:8443", true},
		{[]string{"https://allowed-domain.com:8443"}, false, "https://allowed-domain.com", false},
		{[]string{"https://.allowed-domain.com"}, false, "https://api.allowed-domain.com", true},
		{[]string{"ALLOWED-domain.com"}, false, "http://allowed-DOMAIN.com", true},
		{[]string{"allowed-domain.com:8080"}, false, "http://allowed-domain.com:9999", true}, // bare hosts ignore ports
		{[]string{"*"}, false, none, true},
		{[]string{"*"}, false, "http://anything.example", true},
		{[]string{}, false, none, false},
		{[]string{".allowed-domain.com"}, false, "", false},
		{[]string{".allowed-domain.com"}, false, "something-invalid", false},
		{[]string{".allowed-domain.com"}, false, "null", false},
		{[]string{".allowed-domain.com"}, false, none, false},
		{[]string{".allowed-domain.com"}, true, none, true}, // non-browser clients, when asked for
		{[]string{"[::1]"}, false, "http://[::1]:3000", true},
	}
	for _, tc := range cases {
		h := newHarness(t)
		h.engine.GET("/ws", middleware.Origins(middleware.OriginConfig{Allowed: tc.allowed, AllowMissing: tc.allowMissing}),
			h.mount(func(p *probe) map[string]any { return map[string]any{"ok": true} }))
		ts := h.start(t)
		var comm *wstest.Communicator
		if tc.origin == none {
			comm = ts.Communicator("/ws", wstest.Origin(""))
		} else {
			comm = ts.Communicator("/ws", wstest.Origin(tc.origin))
			if tc.origin == "" {
				comm = ts.Communicator("/ws", wstest.Header("Origin", ""))
			}
		}
		name := tc.origin
		if name == none {
			name = "(no Origin)"
		}
		t.Run(name+"|"+joinPatterns(tc.allowed), func(t *testing.T) {
			if tc.ok {
				h.accepted(t, comm)
			} else {
				h.refused(t, comm, http.StatusForbidden)
			}
		})
	}
}

func joinPatterns(p []string) string {
	s := ""
	for i, x := range p {
		if i > 0 {
			s += ","
		}
		s += x
	}
	return s
}

// TestOriginMiddlewareOverridesSameOriginDefault: an origin the middleware allows is not refused
// again by Mount's own same-origin default.
func TestOriginMiddlewareOverridesSameOriginDefault(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.engine.GET("/ws", middleware.Origins(middleware.OriginConfig{Allowed: []string{"https://app.example"}}),
		h.mount(func(p *probe) map[string]any { return map[string]any{} }))
	ts := h.start(t)
	h.accepted(t, ts.Communicator("/ws", wstest.Origin("https://app.example")))
	h.refused(t, ts.Communicator("/ws"), http.StatusForbidden) // its own origin is not in the list
}
