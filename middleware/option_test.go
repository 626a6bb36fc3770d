package middleware_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gin-gonic/gin"
	"github.com/gorilla/sessions"

	"ginws.dev/ginws"
	"ginws.dev/middleware"
)

// mustPanicWithConfigError runs build and checks that it panics with a *ginws.ConfigError naming
// field.
func mustPanicWithConfigError(t *testing.T, field string, build func()) {
	t.Helper()
	defer func() {
		t.Helper()
		p := recover()
		err, _ := p.(error)
		var ce *ginws.ConfigError
		if !errors.As(err, &ce) || ce.Field != field {
			t.Fatalf("panic %v, want a *ginws.ConfigError naming %s", p, field)
		}
	}()
	build()
}

func TestFactoriesRefuseInvalidConfiguration(t *testing.T) {
	t.Parallel()
	store := sessions.NewCookieStore([]byte("0123456789abcdef0123456789abcdef"))
	mustPanicWithConfigError(t, "middleware.Sessions(store)", func() { middleware.Sessions(nil, "s") })
	mustPanicWithConfigError(t, "middleware.Sessions(name)", func() { middleware.Sessions(store, "") })
	mustPanicWithConfigError(t, "middleware.LoadUser(loader)", func() { middleware.LoadUser[string](nil) })
	mustPanicWithConfigError(t, "middleware.RequireUserStatus(status)", func() { middleware.RequireUserStatus(200) })
}

// The middleware logs to the logger it is given, not to the global one.
func TestMiddlewareLogsToItsLogger(t *testing.T) {
	t.Parallel()
	log, buf := debugLogger()
	store := sessions.NewCookieStore([]byte("0123456789abcdef0123456789abcdef"))
	r := gin.New()
	r.GET("/s", middleware.Sessions(store, "sid", middleware.WithLogger(log)), func(c *gin.Context) { c.Status(204) })
	failing := func(*gin.Context) (string, bool, error) { return "", false, errors.New("database down") }
	r.GET("/u", middleware.LoadUser(failing, middleware.WithLogger(log)), func(c *gin.Context) { c.Status(204) })
	r.GET("/j", middleware.JWT(middleware.JWTConfig{Algorithms: []string{"HS256"}, Key: []byte("k"), Logger: log}))

	for _, req := range []*http.Request{
		httptest.NewRequestWithContext(context.Background(), "GET", "/s", nil),
		httptest.NewRequestWithContext(context.Background(), "GET", "/u", nil),
		httptest.NewRequestWithContext(context.Background(), "GET", "/j", nil),
	} {
		if req.URL.Path == "/s" {
			req.Header.Set("Cookie", "sid=tampered")
		}
		if req.URL.Path == "/j" {
			req.Header.Set("Authorization", "Bearer not-a-token")
		}
		r.ServeHTTP(httptest.NewRecorder(), req)
	}
	for _, want := range []string{"session cookie rejected", "loading the user failed", "JWT refused"} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("the given logger did not get %q; it got:\n%s", want, buf.String())
		}
	}
}
