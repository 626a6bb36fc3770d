package middleware

import (
	"context"
	"net/http"

	"github.com/gin-gonic/gin"

	"ginws.dev/ginws"
)

// userKey holds the loaded user, of the app's own type.
const userKey = "ginws.user"

// UserLoader finds the user of a request from what earlier middleware found (the session, JWT
// claims). ok is false for an anonymous request; err is for failures (a database down) and
// refuses the request with 500.
type UserLoader[U any] func(c *gin.Context) (user U, ok bool, err error)

// LoadUser runs loader and stores the user for consumers (UserFrom) and views (UserFromGin).
// Channels' AuthMiddlewareStack does the same with Django's auth.
// It panics with a *ginws.ConfigError without a loader.
func LoadUser[U any](loader UserLoader[U], opts ...Option) gin.HandlerFunc {
	if loader == nil {
		configError("LoadUser(loader)", nil, "a UserLoader is required")
	}
	log := buildOptions(opts).logger
	return func(c *gin.Context) {
		u, ok, err := loader(c)
		if err != nil {
			log.Error("ginws/middleware: loading the user failed", "path", c.Request.URL.Path, "error", err)
			c.AbortWithStatus(http.StatusInternalServerError)
			return
		}
		if ok {
			c.Set(userKey, u)
		}
		c.Next()
	}
}

// SessionUser returns a loader reading the user ID an HTTP login view stored in the session under
// key (Django keeps it under "_auth_user_id") and looking it up. It needs Sessions earlier in the
// chain. A session without the key is anonymous.
func SessionUser[U any](key string, lookup func(ctx context.Context, id any) (U, bool, error)) UserLoader[U] {
	return func(c *gin.Context) (u U, ok bool, err error) {
		s, found := SessionFromGin(c)
		if !found {
			return u, false, nil
		}
		id, present := s.Values[key]
		if !present {
			return u, false, nil
		}
		return lookup(c, id)
	}
}

// ClaimsUser returns a loader looking the user up from verified JWT claims. It needs JWT earlier
// in the chain; a request without claims is anonymous.
func ClaimsUser[U any, C any](lookup func(ctx context.Context, claims C) (U, bool, error)) UserLoader[U] {
	return func(c *gin.Context) (u U, ok bool, err error) {
		claims, found := ClaimsFromGin[C](c)
		if !found {
			return u, false, nil
		}
		return lookup(c, claims)
	}
}

// UserFrom returns the connection's user, if LoadUser found one of type U.
func UserFrom[U any](s *ginws.Scope) (U, bool) { return ginws.NewKey[U](userKey).Get(s) }

// UserFromGin returns the request's user, if LoadUser found one of type U.
func UserFromGin[U any](c *gin.Context) (U, bool) { return ginws.NewKey[U](userKey).FromGin(c) }

// IsAuthenticated reports whether LoadUser found a user for the connection.
func IsAuthenticated(s *ginws.Scope) bool {
	_, ok := s.Value(userKey)
	return ok
}

// RequireUser refuses anonymous requests with 403 Forbidden, before the upgrade (the status Django
// Channels' servers give a refused handshake). Put it after LoadUser.
func RequireUser() gin.HandlerFunc { return RequireUserStatus(http.StatusForbidden) }

// RequireUserStatus is RequireUser with another status, such as 401 for token-based APIs. It
// panics with a *ginws.ConfigError for a status that is not a 4xx or 5xx error.
func RequireUserStatus(status int) gin.HandlerFunc {
	if status < 400 || status > 599 {
		configError("RequireUserStatus(status)", status, "must be an HTTP error status (400-599)")
	}
	return func(c *gin.Context) {
		if _, ok := c.Get(userKey); !ok {
			if status == http.StatusUnauthorized {
				c.Header("WWW-Authenticate", `Bearer realm="ginws"`)
			}
			c.AbortWithStatus(status)
			return
		}
		c.Next()
	}
}
