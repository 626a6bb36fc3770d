package middleware

import (
	"context"
	"errors"
	"net/http"
	"reflect"
	"slices"

	"github.com/gin-gonic/gin"
	"github.com/gorilla/sessions"

	"ginws.dev/ginws"
)

// Session is the gorilla/sessions session of a request — the same one the app's HTTP views use,
// found through the same store and cookie name. It embeds *sessions.Session, so Values, ID and
// IsNew read as usual.
//
// A consumer owns its Session: read and change it from its handlers, which never run concurrently.
// Nothing is saved behind its back (as in Channels, which never saves a session on a WebSocket):
// call Persist.
type Session struct {
	*sessions.Session
	store    sessions.Store
	name     string
	cookies  []string // the request's Cookie header values, for Persist and Reload
	inCookie bool     // the store keeps the data in the cookie: see cookieStore
}

// ErrSessionNotSavable is returned by Session.Persist when the change could not reach the client:
// after the upgrade a WebSocket cannot set cookies, so only stores that keep the data server side
// (such as gorilla's FilesystemStore, or a Redis or database store) can save, and only for a
// session whose cookie the client already holds.
var ErrSessionNotSavable = errors.New("ginws/middleware: session cannot be saved after the WebSocket upgrade")

var sessionKey = ginws.NewKey[*Session]("ginws.session")

// Sessions loads the request's session from store under the cookie name the app's HTTP views use.
// A missing, tampered, expired or otherwise unreadable cookie gives a new, empty session (an
// anonymous request) — never an error page; the reason is logged at debug level without the
// cookie's value. It panics with a *ginws.ConfigError without a store or a cookie name.
//
// The store may be any gorilla/sessions store, gin-contrib/sessions' stores included (its Store
// is one): on an app whose views use sessions.Default(c), put Sessions on the socket route with
// the store and name given to sessions.Sessions(name, store), and the consumer has the session the
// views use — the same *sessions.Session, as gorilla's per-request registry hands both the one
// it loaded first.
func Sessions(store sessions.Store, name string, opts ...Option) gin.HandlerFunc {
	switch {
	case store == nil:
		configError("Sessions(store)", nil, "a sessions.Store is required")
	case name == "":
		configError("Sessions(name)", `""`, "the session cookie's name is required")
	}
	log := buildOptions(opts).logger
	inCookie := cookieStore(store)
	return func(c *gin.Context) {
		s, err := store.Get(c.Request, name)
		if err != nil {
			log.Debug("ginws/middleware: session cookie rejected; treating the request as anonymous",
				"cookie", name, "error", err.Error())
			s = sessions.NewSession(store, name)
			s.IsNew = true
		}
		if s == nil {
			s = sessions.NewSession(store, name)
			s.IsNew = true
		}
		sessionKey.Set(c, &Session{Session: s, store: store, name: name, cookies: cookieValues(c.Request.Header), inCookie: inCookie})
		c.Next()
	}
}

// cookieValues copies h's Cookie values. A Session lives as long as its socket; the slice
// h.Values returns is a window on the array net/textproto allocates for all of the request's
// header values, which it would keep alive.
func cookieValues(h http.Header) []string { return slices.Clone(h.Values("Cookie")) }

// SessionFrom returns the session Sessions loaded for a connection.
func SessionFrom(s *ginws.Scope) (*Session, bool) { return sessionKey.Get(s) }

// SessionFromGin returns the session Sessions loaded for an HTTP request.
func SessionFromGin(c *gin.Context) (*Session, bool) { return sessionKey.FromGin(c) }

// Persist writes the session to its store (the embedded gorilla Session's Save(r, w) needs the
// HTTP response a WebSocket no longer has). With a cookie store (a *sessions.CookieStore, or a store
// embedding one such as gin-contrib/sessions' cookie store), or for a session the client holds no
// cookie for, it saves nothing and returns ErrSessionNotSavable (wrapped with the reason).
func (s *Session) Persist(ctx context.Context) error {
	if s.inCookie {
		return errors.Join(ErrSessionNotSavable, errors.New("a CookieStore keeps the session in the cookie, which the client can no longer receive; use a server-side store such as FilesystemStore"))
	}
	if s.IsNew {
		return errors.Join(ErrSessionNotSavable, errors.New("the client has no cookie for this session, and none can be set after the upgrade"))
	}
	return s.store.Save(s.request(ctx), discardWriter{}, s.Session)
}

// Reload reads the session again from its store — to see what an HTTP view saved after the
// handshake. Unsaved changes are lost. With a cookie store it rereads the handshake's cookie.
func (s *Session) Reload(ctx context.Context) error {
	fresh, err := s.store.New(s.request(ctx), s.name)
	if err != nil {
		return err
	}
	s.Session = fresh
	return nil
}

// cookieStore reports whether store keeps the session in the cookie: a *sessions.CookieStore, or
// a store that embeds one, as gin-contrib/sessions' cookie.NewStore does. Such a store "saves" into
// a Set-Cookie header that nobody receives after the upgrade.
func cookieStore(store sessions.Store) bool {
	if _, ok := store.(*sessions.CookieStore); ok {
		return true
	}
	v := reflect.ValueOf(store)
	if v.Kind() == reflect.Pointer {
		v = v.Elem()
	}
	if v.Kind() != reflect.Struct {
		return false
	}
	cookieStoreType := reflect.TypeFor[*sessions.CookieStore]()
	for i := range v.NumField() {
		if f := v.Type().Field(i); f.Anonymous && f.Type == cookieStoreType {
			return true
		}
	}
	return false
}

// request rebuilds what a store reads from the handshake request: its cookies. Keeping only those
// lets the original request (and the registry gorilla/sessions hangs on its context) go.
func (s *Session) request(ctx context.Context) *http.Request {
	r, _ := http.NewRequestWithContext(ctx, http.MethodGet, "/", nil)
	r.Header = http.Header{"Cookie": s.cookies}
	return r
}

// discardWriter is the ResponseWriter a store gets after the upgrade: cookies it sets go nowhere.
type discardWriter struct{}

func (discardWriter) Header() http.Header         { return http.Header{} }
func (discardWriter) Write(b []byte) (int, error) { return len(b), nil }
func (discardWriter) WriteHeader(int)             {}
