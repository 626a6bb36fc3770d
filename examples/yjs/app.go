package main

import (
	"context"
	"embed"
	"html/template"
	"log/slog"
	"net/http"
	"regexp"
	"strings"
	"unicode/utf8"

	"ginws.dev/ginws/yjs/ystore"

	"github.com/gin-gonic/gin"
	"github.com/gorilla/sessions"

	"ginws.dev/ginws"
	"ginws.dev/ginws/layer"
	"ginws.dev/ginws/yjs"
	"ginws.dev/middleware"
)

//go:generate ./build.sh

// The page's template and its JavaScript, built from web/src by build.sh and committed.
//
//go:embed templates web/dist/app.js
var assets embed.FS

// Options configures the app. The zero value serves the page and the socket to anyone.
type Options struct {
	// RequireLogin asks for a name before the page is shown and refuses anonymous sockets with
	// 403. Optional. Default false: no sign-in.
	RequireLogin bool
	// SessionKey signs the session cookie. Required when RequireLogin is set.
	SessionKey []byte
	// Layer is the channel layer: processes on one layer share their rooms. Optional. Default:
	// in-memory (one process).
	Layer layer.Layer
	// Store keeps the documents. Optional. Default ystore.NewMemory().
	Store ystore.Store
	// Logger receives the log lines. Optional. Default slog.Default().
	Logger *slog.Logger
}

// App is the collaborative editor: Gin routes for the page, its script and the y-websocket socket.
type App struct {
	WS     *ginws.Server
	Yjs    *yjs.Server
	engine *gin.Engine
}

const cookieName = "yjs_session"

// maxDocument bounds a room's document, and so the frames a Yjs socket reads and queues (ginws/yjs
// accepts its connections with limits sized from it; other routes keep the server's defaults).
const maxDocument = 16 << 20

// NewApp builds the app.
func NewApp(o Options) *App {
	ws := ginws.New(ginws.Config{Layer: o.Layer, Logger: o.Logger})
	ys := yjs.New(ws, yjs.Config{Store: o.Store, Logger: o.Logger, MaxUpdateSize: maxDocument, MaxDocumentSize: maxDocument})

	r := gin.New()
	r.Use(gin.Recovery())
	r.SetHTMLTemplate(template.Must(template.ParseFS(assets, "templates/*.html")))
	a := &App{WS: ws, Yjs: ys, engine: r}

	socket := []gin.HandlerFunc{ws.Mount(ys.Consumer)}
	if o.RequireLogin {
		store := sessions.NewCookieStore(o.SessionKey)
		store.Options.HttpOnly = true
		store.Options.SameSite = http.SameSiteLaxMode
		logTo := middleware.WithLogger(ws.Logger())
		r.Use(middleware.Sessions(store, cookieName, logTo))
		r.Use(middleware.LoadUser(middleware.SessionUser("username", func(_ context.Context, id any) (string, bool, error) {
			name, ok := id.(string)
			return name, ok && name != "", nil
		}), logTo))
		r.POST("/login", login)
		r.POST("/logout", logout)
		socket = append([]gin.HandlerFunc{middleware.RequireUser()}, socket...)
	}
	r.GET("/", func(c *gin.Context) { page(c, o.RequireLogin) })
	r.GET("/static/app.js", script)
	r.GET("/yjs/*room", socket...)
	return a
}

// Handler returns the app's HTTP handler.
func (a *App) Handler() http.Handler { return a.engine }

// roomPattern is what the page accepts in ?room=; the socket itself takes any room name.
var roomPattern = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)

func page(c *gin.Context, requireLogin bool) {
	room := c.DefaultQuery("room", "lobby")
	if !roomPattern.MatchString(room) {
		c.String(http.StatusNotFound, "room names use letters, digits, '-', '_' and '.' (up to 64)")
		return
	}
	user, signedIn := middleware.UserFromGin[string](c)
	c.HTML(http.StatusOK, "index.html", gin.H{
		"Room":      room,
		"User":      user,
		"ShowLogin": requireLogin && !signedIn,
		"Logout":    requireLogin && signedIn,
	})
}

func script(c *gin.Context) {
	b, err := assets.ReadFile("web/dist/app.js")
	if err != nil {
		c.Status(http.StatusInternalServerError)
		return
	}
	c.Header("Cache-Control", "no-cache")
	c.Data(http.StatusOK, "text/javascript; charset=utf-8", b)
}

// login stores the name in the session; the socket's middleware reads it back.
func login(c *gin.Context) {
	name := strings.TrimSpace(c.PostForm("username"))
	if name == "" || utf8.RuneCountInString(name) > 32 {
		c.String(http.StatusBadRequest, "username: 1 to 32 characters")
		return
	}
	s, _ := middleware.SessionFromGin(c)
	s.Values["username"] = name
	if err := s.Session.Save(c.Request, c.Writer); err != nil {
		c.String(http.StatusInternalServerError, "could not save the session")
		return
	}
	c.Redirect(http.StatusSeeOther, "/?room="+roomOrLobby(c.PostForm("room")))
}

func logout(c *gin.Context) {
	s, _ := middleware.SessionFromGin(c)
	s.Options.MaxAge = -1
	_ = s.Session.Save(c.Request, c.Writer)
	c.Redirect(http.StatusSeeOther, "/")
}

func roomOrLobby(room string) string {
	if roomPattern.MatchString(room) {
		return room
	}
	return "lobby"
}
