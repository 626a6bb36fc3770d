package ginws_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/gin-gonic/gin"

	"ginws.dev/ginws"
)

// gin-contrib/sessions keeps its session under sessions.DefaultKey, holding the handshake's
// ResponseWriter; a Scope, which outlives the handshake, must not keep it (middleware.Sessions is
// the consumer's way to that session). Other values stay.
func TestScopeLeavesOutGinContribSession(t *testing.T) {
	c, _ := gin.CreateTestContext(httptest.NewRecorder())
	c.Request = httptest.NewRequest(http.MethodGet, "/ws", nil)
	c.Set("github.com/gin-contrib/sessions", struct{ w gin.ResponseWriter }{c.Writer})
	c.Set("JWT_PAYLOAD", map[string]any{"id": "ada"})
	scope := ginws.NewScope(c)
	if _, ok := scope.Value("github.com/gin-contrib/sessions"); ok {
		t.Error("the Scope kept gin-contrib/sessions' session, which writes to the recycled response")
	}
	if _, ok := scope.Value("JWT_PAYLOAD"); !ok {
		t.Error("the Scope dropped an ordinary middleware value")
	}
}
