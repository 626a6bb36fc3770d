package middleware

import (
	"net"
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"
)

// AllowedHosts refuses requests whose Host header is not in hosts, with 400 Bad Request and no
// upgrade — Django's ALLOWED_HOSTS, the half of Channels' AllowedHostsOriginValidator that Origins
// leaves out. Put it before Origins and Mount (or on the whole engine with r.Use).
//
// It matters most with Mount's default origin check, which trusts an Origin equal to the Host: a
// page on evil.example whose name an attacker re-pointed at the server's address (DNS rebinding)
// sends "Host: evil.example" and "Origin: http://evil.example", which are the same origin. Only a
// list of the names the server really answers to tells them apart.
//
// Patterns follow Django: "example.com" matches that host exactly; ".example.com" matches
// example.com and its subdomains; "*" matches any host (only when asked for). The port of the
// Host header is ignored and the comparison is case-insensitive. A request without a host is
// refused. It panics with a *ginws.ConfigError when hosts is empty: a server that answers to no
// name is a typo, not a policy.
//
// The status is 400, as Django answers a DisallowedHost: the request names a site this server
// does not serve, which is the client's error, not a permission it lacks.
func AllowedHosts(hosts ...string) gin.HandlerFunc {
	patterns := make([]string, 0, len(hosts))
	anyHost := false
	for _, h := range hosts {
		h = strings.ToLower(strings.TrimSpace(h))
		switch {
		case h == "":
			continue
		case h == "*":
			anyHost = true
		case strings.Contains(h, "/") || strings.Contains(h, "://"):
			configError("AllowedHosts(hosts)", h, "a host pattern is a host name (\"example.com\", \".example.com\" or \"*\"), not a URL")
		}
		patterns = append(patterns, strings.Trim(h, "[]"))
	}
	if len(patterns) == 0 {
		configError("AllowedHosts(hosts)", hosts, "at least one host (\"*\" for any) is required")
	}
	return func(c *gin.Context) {
		if !anyHost && !hostAllowed(c.Request.Host, patterns) {
			c.AbortWithStatus(http.StatusBadRequest)
			return
		}
		c.Next()
	}
}

// hostAllowed reports whether the host of a Host header value (port stripped) matches one of
// patterns.
func hostAllowed(hostport string, patterns []string) bool {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	host = strings.ToLower(strings.Trim(host, "[]"))
	host = strings.TrimSuffix(host, ".") // "example.com." names the same host
	if host == "" {
		return false
	}
	for _, p := range patterns {
		if sameDomain(host, p) {
			return true
		}
	}
	return false
}
