package ginws

import (
	"crypto/tls"
	"net/http"
	"net/url"
	"strings"

	"github.com/gin-gonic/gin"
)

// Scope describes the handshake of one connection — Channels' scope dict, for Gin. Mount builds it
// from the *gin.Context after the route's middleware ran, so it holds the path, its parameters, the
// query, headers, cookies, offered subprotocols and client address, plus whatever the middleware
// stored in the context (a user, a session, JWT claims), read back through typed Keys — except
// the session object of gin-contrib/sessions (under its sessions.DefaultKey), which is bound to the
// handshake's response; middleware.Sessions, given the same store, gives consumers that session.
//
// A Scope is a snapshot: it stays valid after the handshake, when Gin has already recycled its
// Context, and it is safe for concurrent reads. It is never modified after Mount builds it.
type Scope struct {
	method     string
	path       string // decoded
	rawPath    string // as sent, when it differs from the encoding of path
	rawQuery   string
	header     []string // canonical key, value, key, value...: a long-lived copy smaller than a map
	host       string
	remoteAddr string
	tls        *tls.ConnectionState
	params     gin.Params
	route      string
	clientIP   string
	keys       []keyValue // what middleware stored (c.Set): a few, so a slice beats a map
}

type keyValue struct{ k, v any }

// contribSessionsKey is where gin-contrib/sessions' Sessions middleware keeps the request's session
// (sessions.DefaultKey). A Scope leaves it out: that object holds the handshake's
// http.ResponseWriter, which is a field of the gin.Context Gin reuses for a later request, so its
// Save after the handshake would return nil and put this user's Set-Cookie on another client's
// response — handing them the session.
const contribSessionsKey = "github.com/gin-contrib/sessions"

// NewScope snapshots c. Mount calls it for every handshake; tests can call it on a context from
// gin.CreateTestContext to exercise code that reads a Scope without any network.
func NewScope(c *gin.Context) *Scope {
	r := c.Request
	s := &Scope{
		method:     r.Method,
		path:       r.URL.Path,
		rawPath:    r.URL.RawPath,
		rawQuery:   r.URL.RawQuery,
		header:     flattenHeader(r.Header),
		host:       r.Host,
		remoteAddr: r.RemoteAddr,
		tls:        r.TLS,
		route:      c.FullPath(),
		clientIP:   c.ClientIP(),
	}
	if len(c.Keys) > 0 {
		s.keys = make([]keyValue, 0, len(c.Keys))
		for k, v := range c.Keys {
			if k == contribSessionsKey {
				continue
			}
			s.keys = append(s.keys, keyValue{k, v})
		}
	}
	if len(c.Params) > 0 {
		s.params = append(gin.Params(nil), c.Params...)
	}
	return s
}

// Request returns a new copy of the handshake request: method, URL, headers, host, remote address
// and TLS state. It has no body and a background context: the handshake's context, and whatever
// middleware hung on it, ends with the handshake — a Scope keeps only what it exposes, so that a
// long-lived connection keeps little alive.
func (s *Scope) Request() *http.Request {
	return &http.Request{
		Method: s.method, URL: s.url(), Header: s.Header(), Host: s.host, RemoteAddr: s.remoteAddr,
		TLS: s.tls, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1, Body: http.NoBody,
	}
}

// Path returns the decoded URL path, e.g. "/ws/chat/lobby/".
func (s *Scope) Path() string { return s.path }

func (s *Scope) url() *url.URL {
	return &url.URL{Path: s.path, RawPath: s.rawPath, RawQuery: s.rawQuery}
}

// RawPath returns the path as the client sent it, still escaped.
func (s *Scope) RawPath() string { return s.url().EscapedPath() }

// Route returns the Gin route pattern that matched, e.g. "/ws/chat/:room".
func (s *Scope) Route() string { return s.route }

// Param returns the value of a path parameter (Channels' scope["url_route"]["kwargs"]). For a
// catch-all parameter such as *room, Gin includes the leading '/'.
func (s *Scope) Param(name string) string { return s.params.ByName(name) }

// Params returns a copy of all path parameters.
func (s *Scope) Params() gin.Params { return append(gin.Params(nil), s.params...) }

// Query parses and returns the query string. Each call parses afresh, so callers may modify
// the result.
func (s *Scope) Query() url.Values {
	q, _ := url.ParseQuery(s.rawQuery)
	return q
}

// QueryValue returns the first value of a query parameter.
func (s *Scope) QueryValue(key string) string { return s.Query().Get(key) }

// Header returns a copy of the handshake's request headers.
func (s *Scope) Header() http.Header {
	h := make(http.Header, len(s.header)/2)
	for i := 0; i+1 < len(s.header); i += 2 {
		h[s.header[i]] = append(h[s.header[i]], s.header[i+1])
	}
	return h
}

// headerValues returns the values of a header (key in canonical form) without building a map.
func (s *Scope) headerValues(key string) []string {
	var out []string
	for i := 0; i+1 < len(s.header); i += 2 {
		if s.header[i] == key {
			out = append(out, s.header[i+1])
		}
	}
	return out
}

func flattenHeader(h http.Header) []string {
	n := 0
	for _, vs := range h {
		n += 2 * len(vs)
	}
	out := make([]string, 0, n)
	for k, vs := range h {
		k = handshakeString(k)
		for _, v := range vs {
			out = append(out, k, handshakeString(v))
		}
	}
	return out
}

// handshakeStrings are header keys and values that every WebSocket handshake (or most) carries
// and that net/textproto does not intern: each request has its own copies. A Scope outlives its
// request — by hours, one per socket — so flattenHeader keeps these constants instead.
var handshakeStrings = func() map[string]string {
	m := make(map[string]string)
	for _, s := range []string{
		"Upgrade", "Sec-Websocket-Key", "Sec-Websocket-Version", "Sec-Websocket-Extensions",
		"Sec-Websocket-Protocol", "Origin", "Sec-Fetch-Dest", "Sec-Fetch-Mode", "Sec-Fetch-Site",
		"websocket", "upgrade", "Keep-Alive, Upgrade", "keep-alive, Upgrade", "13", "no-cache",
		"permessage-deflate", "permessage-deflate; client_max_window_bits",
		"gzip, deflate", "gzip, deflate, br", "gzip, deflate, br, zstd", "same-origin", "cross-site",
	} {
		m[s] = s
	}
	return m
}()

// handshakeString returns the constant equal to s from handshakeStrings, or s.
func handshakeString(s string) string {
	if len(s) > 48 { // longer than any of them: skip hashing a cookie
		return s
	}
	if c, ok := handshakeStrings[s]; ok {
		return c
	}
	return s
}

// Cookie returns the named cookie of the handshake, or http.ErrNoCookie.
func (s *Scope) Cookie(name string) (*http.Cookie, error) {
	return (&http.Request{Header: http.Header{"Cookie": s.headerValues("Cookie")}}).Cookie(name)
}

// Cookies returns every cookie of the handshake.
func (s *Scope) Cookies() []*http.Cookie {
	return (&http.Request{Header: http.Header{"Cookie": s.headerValues("Cookie")}}).Cookies()
}

// Subprotocols returns the subprotocols the client offered in Sec-WebSocket-Protocol, in order.
func (s *Scope) Subprotocols() []string {
	return offeredSubprotocols(http.Header{"Sec-Websocket-Protocol": s.headerValues("Sec-Websocket-Protocol")})
}

// offeredSubprotocols parses the Sec-WebSocket-Protocol headers of a handshake request.
func offeredSubprotocols(h http.Header) []string {
	var out []string
	for _, h := range h.Values("Sec-Websocket-Protocol") {
		for _, p := range strings.Split(h, ",") {
			if p = strings.TrimSpace(p); p != "" {
				out = append(out, p)
			}
		}
	}
	return out
}

// Origin returns the Origin header ("" for most non-browser clients).
func (s *Scope) Origin() string {
	if v := s.headerValues("Origin"); len(v) > 0 {
		return v[0]
	}
	return ""
}

// Host returns the Host the client asked for.
func (s *Scope) Host() string { return s.host }

// ClientIP returns the client address as Gin computes it (honouring the engine's trusted proxies).
func (s *Scope) ClientIP() string { return s.clientIP }

// RemoteAddr returns the address of the peer of the TCP connection ("ip:port").
func (s *Scope) RemoteAddr() string { return s.remoteAddr }

// Value returns a raw value stored in the gin.Context by middleware (c.Set). Prefer a typed Key.
func (s *Scope) Value(key any) (any, bool) {
	for _, kv := range s.keys {
		if kv.k == key {
			return kv.v, true
		}
	}
	return nil, false
}

// Key is a typed name for a value that middleware stores in the gin.Context and consumers read from
// the Scope — the typed accessor pattern, so nobody type-asserts raw map values:
//
//	var TenantKey = ginws.NewKey[*Tenant]("myapp.tenant")
//	TenantKey.Set(c, tenant)                 // in middleware
//	tenant, ok := TenantKey.Get(c.Scope())   // in a consumer
//
// Declare keys once, as package-level variables; namespace their names ("ginws.user").
type Key[T any] struct{ name string }

// NewKey returns a Key stored under name.
func NewKey[T any](name string) Key[T] { return Key[T]{name: name} }

// Name returns the gin.Context key the value is stored under.
func (k Key[T]) Name() string { return k.name }

// Set stores v in the gin.Context.
func (k Key[T]) Set(c *gin.Context, v T) { c.Set(k.name, v) }

// Get reads the value from a Scope; ok is false when it is absent or of another type.
func (k Key[T]) Get(s *Scope) (v T, ok bool) {
	if s == nil {
		return v, false
	}
	raw, _ := s.Value(k.name)
	v, ok = raw.(T)
	return v, ok
}

// FromGin reads the value from a gin.Context (for HTTP views sharing the middleware).
func (k Key[T]) FromGin(c *gin.Context) (v T, ok bool) {
	raw, exists := c.Get(k.name)
	if !exists {
		return v, false
	}
	v, ok = raw.(T)
	return v, ok
}

// originCheckedKey marks a request whose origin a middleware already validated.
const originCheckedKey = "ginws.origin-checked"

// MarkOriginChecked tells Mount that middleware has validated the request's Origin, so Mount's own
// same-origin default does not refuse an origin the middleware allowed. Origin middleware calls it;
// applications rarely need to.
func MarkOriginChecked(c *gin.Context) { c.Set(originCheckedKey, true) }

// preferredSubprotocolKey names the subprotocol Accept selects when Connect does not choose one.
const preferredSubprotocolKey = "ginws.subprotocol"

// PreferSubprotocol makes Accept select p when the client offered it and Connect did not choose
// another. Middleware that reads a token from Sec-WebSocket-Protocol (["bearer", TOKEN]) uses it so
// that the marker is echoed, as browsers require of a server when they offer subprotocols.
func PreferSubprotocol(c *gin.Context, p string) { c.Set(preferredSubprotocolKey, p) }

func originChecked(c *gin.Context) bool {
	v, _ := c.Get(originCheckedKey)
	b, _ := v.(bool)
	return b
}

// sameOrigin is the default origin policy: no Origin header (a non-browser client), or an Origin
// whose host equals the request's Host, compared case-insensitively.
func sameOrigin(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	u, err := url.Parse(origin)
	if err != nil {
		return false
	}
	return strings.EqualFold(u.Host, r.Host)
}
