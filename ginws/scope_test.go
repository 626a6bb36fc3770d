package ginws_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/gin-gonic/gin"

	"ginws.dev/ginws"
)

type user struct{ Name string }

var userKey = ginws.NewKey[*user]("test.user")

// TestScopeWithoutNetwork builds a Scope from a test context, as an app's unit tests can.
func TestScopeWithoutNetwork(t *testing.T) {
	t.Parallel()
	w := httptest.NewRecorder()
	c, r := gin.CreateTestContext(w)
	var scope *ginws.Scope
	r.GET("/ws/chat/:room/*rest", func(c *gin.Context) {
		userKey.Set(c, &user{Name: "ada"})
		c.Set("custom", 42)
		scope = ginws.NewScope(c)
	})
	req := httptest.NewRequest(http.MethodGet, "/ws/chat/lobby/a%2Fb/c?token=x&n=1&n=2", nil)
	req.Header.Set("Sec-WebSocket-Protocol", "chat.v2, bearer ,  json")
	req.Header.Set("Origin", "https://example.com")
	req.AddCookie(&http.Cookie{Name: "sessionid", Value: "abc"})
	req.RemoteAddr = "192.0.2.7:5555"
	c.Request = req
	r.HandleContext(c)

	if scope == nil {
		t.Fatal("route did not run")
	}
	if got := scope.Param("room"); got != "lobby" {
		t.Errorf("Param(room) = %q", got)
	}
	if got := scope.Route(); got != "/ws/chat/:room/*rest" {
		t.Errorf("Route = %q", got)
	}
	if got := scope.Path(); got != "/ws/chat/lobby/a/b/c" {
		t.Errorf("Path = %q", got)
	}
	if got := scope.RawPath(); got != "/ws/chat/lobby/a%2Fb/c" {
		t.Errorf("RawPath = %q", got)
	}
	if got := scope.Query()["n"]; len(got) != 2 {
		t.Errorf("Query n = %v", got)
	}
	if got := scope.QueryValue("token"); got != "x" {
		t.Errorf("QueryValue(token) = %q", got)
	}
	if got := scope.Subprotocols(); len(got) != 3 || got[0] != "chat.v2" || got[1] != "bearer" || got[2] != "json" {
		t.Errorf("Subprotocols = %q", got)
	}
	if ck, err := scope.Cookie("sessionid"); err != nil || ck.Value != "abc" {
		t.Errorf("Cookie = %v, %v", ck, err)
	}
	if got := scope.Origin(); got != "https://example.com" {
		t.Errorf("Origin = %q", got)
	}
	if got := scope.ClientIP(); got != "192.0.2.7" {
		t.Errorf("ClientIP = %q", got)
	}
	if got := scope.RemoteAddr(); got != "192.0.2.7:5555" {
		t.Errorf("RemoteAddr = %q", got)
	}
	if u, ok := userKey.Get(scope); !ok || u.Name != "ada" {
		t.Errorf("userKey.Get = %v, %v", u, ok)
	}
	if v, ok := scope.Value("custom"); !ok || v != 42 {
		t.Errorf("Value(custom) = %v, %v", v, ok)
	}
	wrongType := ginws.NewKey[string]("custom")
	if _, ok := wrongType.Get(scope); ok {
		t.Error("a Key of the wrong type must report absent, not panic")
	}
	if _, ok := ginws.NewKey[int]("missing").Get(scope); ok {
		t.Error("a missing key must report absent")
	}
	// The Scope is a snapshot: Gin recycling its context must not change it.
	c.Params = c.Params[:0]
	c.Keys = nil
	if scope.Param("room") != "lobby" {
		t.Error("Scope shares Gin's params slice")
	}
	if _, ok := userKey.Get(scope); !ok {
		t.Error("Scope shares Gin's keys map")
	}
}
