package middleware

import (
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"

	"ginws.dev/ginws"
)

// OriginConfig configures Origins.
type OriginConfig struct {
	// Allowed lists the origins allowed to open a WebSocket, with Django Channels' OriginValidator
	// patterns:
	//   - "example.com": that host, any scheme and port;
	//   - ".example.com": example.com and all its subdomains;
	//   - "https://example.com" or "https://example.com:8443": scheme, host and port must match
	//     (the port defaults to 80 for http/ws and 443 for https/wss); a leading '.' works here too;
	//   - "*": any origin, also none — only when asked for explicitly.
	Allowed []string
	// AllowMissing lets handshakes without an Origin header through (non-browser clients: mobile
	// apps, services). Browsers always send one. Optional. Default false, as in Channels.
	AllowMissing bool
}

// Origins refuses handshakes whose Origin is not allowed, with 403 Forbidden and no upgrade — the
// defence against cross-site WebSocket hijacking. Allowed handshakes are marked so that Mount's own
// same-origin default does not refuse them again.
func Origins(cfg OriginConfig) gin.HandlerFunc {
	patterns := make([]string, 0, len(cfg.Allowed))
	any := false
	for _, p := range cfg.Allowed {
		p = strings.TrimSpace(p)
		if p == "*" {
			any = true
		}
		if p != "" {
			patterns = append(patterns, p)
		}
	}
	return func(c *gin.Context) {
		origin, present := c.Request.Header["Origin"]
		ok := any
		switch {
		case ok:
		case !present:
			ok = cfg.AllowMissing
		default:
			ok = len(origin) == 1 && ValidOrigin(origin[0], patterns)
		}
		if !ok {
			c.AbortWithStatus(http.StatusForbidden)
			return
		}
		ginws.MarkOriginChecked(c)
		c.Next()
	}
}

// ValidOrigin reports whether origin (an Origin header value) matches one of patterns, with the
// rules of OriginConfig.Allowed. An empty or unparsable origin, or "null", matches only "*".
func ValidOrigin(origin string, patterns []string) bool {
	for _, p := range patterns {
		if p == "*" {
			return true
		}
	}
	u, err := url.Parse(origin)
	if err != nil || u.Hostname() == "" {
		return false
	}
	host := strings.ToLower(u.Hostname())
	for _, p := range patterns {
		if matchOrigin(u, host, p) {
			return true
		}
	}
	return false
}

func matchOrigin(origin *url.URL, host, pattern string) bool {
	pattern = strings.ToLower(pattern)
	if !strings.Contains(pattern, "://") {
		// A bare host pattern: any scheme and port. Strip a port if one was given.
		ph := pattern
		if h, _, err := net.SplitHostPort(pattern); err == nil {
			ph = h
		}
		return sameDomain(host, strings.Trim(ph, "[]"))
	}
	pu, err := url.Parse(pattern)
	if err != nil {
		return false
	}
	if pu.Scheme != strings.ToLower(origin.Scheme) {
		return false
	}
	op, pp := originPort(origin), originPort(pu)
	if op != pp {
		return false
	}
	return sameDomain(host, pu.Hostname())
}

// sameDomain is Django's is_same_domain: a pattern starting with '.' matches the domain and its
// subdomains; anything else matches exactly.
func sameDomain(host, pattern string) bool {
	if pattern == "" {
		return false
	}
	if pattern[0] == '.' {
		return strings.HasSuffix(host, pattern) || host == pattern[1:]
	}
	return host == pattern
}

// originPort returns the explicit port, or the scheme's default, or -1.
func originPort(u *url.URL) int {
	if p := u.Port(); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil {
			return -2
		}
		return n
	}
	switch strings.ToLower(u.Scheme) {
	case "http", "ws":
		return 80
	case "https", "wss":
		return 443
	}
	return -1
}
