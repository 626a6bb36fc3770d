package main

import (
	"context"
	"embed"
	"expvar"
	"html/template"
	"log/slog"
	"net/http"
	"net/http/pprof"
	"runtime"
	"strings"
	"unicode/utf8"

	"github.com/gin-gonic/gin"
	"github.com/gorilla/sessions"

	"ginws.dev/ginws"
	"ginws.dev/ginws/layer"
	"ginws.dev/middleware"
)

//go:embed templates
var templates embed.FS

// Options configures the app.
type Options struct {
	SessionKey []byte        // signs the session cookie
	Layer      layer.Layer   // default: in-memory, with History for the rooms
	Debug      bool          // serve /debug/stats and /debug/pprof/
	Logger     *slog.Logger  // default slog.Default()
	WSConfig   *ginws.Config // overrides for tests; Layer and Logger above win
	NoPresence bool          // serve the chat without who-is-here (load comparisons with peers)
	// Compress negotiates permessage-deflate with clients that offer it (browsers do): each
	// room message is compressed once for all its members. See the README's "Compression".
	Compress bool
	Limits   ginws.Limits // rate limits and caps (ginws.Config.Limits); zero: none
	Hosts    []string     // allowed Host names (middleware.AllowedHosts); empty: any
	Metrics  bool         // serve Prometheus metrics at /metrics
}

// App is the chat application: Gin routes for the pages and the socket.
type App struct {
	WS     *ginws.Server
	engine *gin.Engine
}

const cookieName = "chat_session"

// NewApp builds the app.
func NewApp(o Options) *App {
	var cfg ginws.Config
	if o.WSConfig != nil {
		cfg = *o.WSConfig
	}
	cfg.Layer, cfg.Logger = o.Layer, o.Logger
	if cfg.Layer == nil {
		cfg.Layer = layer.NewMemory(layer.MemoryConfig{History: []layer.HistoryRule{History}})
	}
	cfg.Groups = kickGroups
	cfg.User = chatUser // for per-user limits and the "user" attribute of log lines
	if o.Limits != (ginws.Limits{}) {
		cfg.Limits = o.Limits
	}
	ws := ginws.New(cfg)

	store := sessions.NewCookieStore(o.SessionKey)
	store.Options.HttpOnly = true
	store.Options.SameSite = http.SameSiteLaxMode

	r := gin.New()
	r.Use(gin.Recovery())
	if len(o.Hosts) > 0 {
		r.Use(middleware.AllowedHosts(o.Hosts...))
	}
	r.SetHTMLTemplate(template.Must(template.ParseFS(templates, "templates/*.html")))
	logTo := middleware.WithLogger(ws.Logger())
	r.Use(middleware.Sessions(store, cookieName, logTo))
	loadUser := middleware.LoadUser(middleware.SessionUser("username", func(_ context.Context, id any) (string, bool, error) {
		name, ok := id.(string)
		return name, ok && name != "", nil
	}), logTo)
	r.Use(loadUser)

	r.GET("/", index)
	r.POST("/login", login)
	r.POST("/logout", logoutView(ws))
	r.GET("/whoami", whoami)
	r.GET("/chat/:room/", room)
	r.GET("/chat/:room", func(c *gin.Context) { c.Redirect(http.StatusMovedPermanently, "/chat/"+c.Param("room")+"/") })

	factory := func() ginws.Consumer { return &PresenceChat{ChatConsumer{compress: o.Compress}} }
	if o.NoPresence {
		factory = func() ginws.Consumer { return &ChatConsumer{compress: o.Compress} }
	}
	socket := ws.Mount(factory)
	r.GET("/ws/chat/:room", middleware.RequireUser(), socket)
	r.GET("/ws/chat/:room/", middleware.RequireUser(), socket)
	r.GET("/rooms/:room/members", middleware.RequireUser(), members(ws))
	events := ws.MountSSE(func() ginws.StreamConsumer { return ChatStream{} })
	r.GET("/events/chat/:room/", middleware.RequireUser(), events)

	if o.Debug {
		debugRoutes(r, ws)
	}
	if o.Metrics {
		metricsRoute(r, ws, o.Layer)
	}
	return &App{WS: ws, engine: r}
}

// Handler returns the app's HTTP handler.
func (a *App) Handler() http.Handler { return a.engine }

// chatUser is Config.User: the signed-in user's name.
func chatUser(s *ginws.Scope) string {
	u, _ := middleware.UserFrom[string](s)
	return u
}

func index(c *gin.Context) {
	user, _ := middleware.UserFromGin[string](c)
	c.HTML(http.StatusOK, "index.html", gin.H{"User": user, "Next": c.Query("next")})
}

// login is an ordinary HTTP view: it stores the user name in the session, which the socket's
// middleware reads back.
func login(c *gin.Context) {
	name := strings.TrimSpace(c.PostForm("username"))
	if name == "" || utf8.RuneCountInString(name) > 32 {
		c.String(http.StatusBadRequest, "username: 1 to 32 characters")
		return
	}
	s, _ := middleware.SessionFromGin(c)
	s.Values["username"] = name
	s.Values[sidKey] = newSessionID() // a new sign-in is a new session: its sockets are its own
	if err := s.Session.Save(c.Request, c.Writer); err != nil {
		c.String(http.StatusInternalServerError, "could not save the session")
		return
	}
	next := c.PostForm("next")
	if !strings.HasPrefix(next, "/chat/") {
		next = "/"
	}
	c.Redirect(http.StatusSeeOther, next)
}

// logoutView signs the session out and closes its sockets, on every chat process sharing the
// layer (the other sessions of the same user stay).
func logoutView(ws *ginws.Server) gin.HandlerFunc {
	return func(c *gin.Context) {
		s, _ := middleware.SessionFromGin(c)
		if sid, ok := s.Values[sidKey].(string); ok {
			if err := ws.CloseGroup(c, sessionGroup(sid), closeSignedOut, "signed out"); err != nil {
				ws.Logger().Warn("chat: could not close the session's sockets", "error", err)
			}
		}
		s.Options.MaxAge = -1
		_ = s.Session.Save(c.Request, c.Writer)
		c.Redirect(http.StatusSeeOther, "/")
	}
}

// whoami answers 200 {"user": NAME} while the session has a user, 401 {"user": null} once it has
// none. The room page asks before reconnecting a socket that was refused: a browser never sees
// the HTTP status of a failed WebSocket handshake, so it cannot tell "signed out" (403) from
// "server down" by itself.
func whoami(c *gin.Context) {
	c.Header("Cache-Control", "no-store")
	user, ok := middleware.UserFromGin[string](c)
	if !ok {
		c.JSON(http.StatusUnauthorized, gin.H{"user": nil})
		return
	}
	c.JSON(http.StatusOK, gin.H{"user": user})
}

func room(c *gin.Context) {
	name := c.Param("room")
	if !validRoom(name) {
		c.String(http.StatusNotFound, "room names use letters, digits, '-', '_' and '.' (up to 80)")
		return
	}
	user, ok := middleware.UserFromGin[string](c)
	if !ok {
		c.Redirect(http.StatusSeeOther, "/?next=/chat/"+name+"/")
		return
	}
	c.HTML(http.StatusOK, "room.html", gin.H{"Room": name, "User": user})
}

// members is an ordinary HTTP view reading presence from the socket server's layer: who is in the
// room, {"members": [{"user": "alice", "connections": 2}, ...]} sorted by user.
func members(ws *ginws.Server) gin.HandlerFunc {
	return func(c *gin.Context) {
		c.Header("Cache-Control", "no-store")
		name := c.Param("room")
		if !validRoom(name) {
			c.JSON(http.StatusNotFound, gin.H{"error": "bad room name"})
			return
		}
		p, ok := ws.Layer().(layer.Presence)
		if !ok {
			c.JSON(http.StatusNotImplemented, gin.H{"error": "the channel layer has no presence"})
			return
		}
		list, err := p.PresenceList(c, "chat_"+name)
		if err != nil {
			ws.Logger().Warn("chat: listing members failed", "room", name, "error", err)
			c.JSON(http.StatusServiceUnavailable, gin.H{"error": "members unavailable, try again"})
			return
		}
		c.JSON(http.StatusOK, gin.H{"members": list})
	}
}

func validRoom(name string) bool {
	return len(name) <= 80 && layer.ValidateGroupName("chat_"+name) == nil
}

// debugRoutes expose what load tools watch: goroutines, heap and the server's counters.
func debugRoutes(r *gin.Engine, ws *ginws.Server) {
	r.GET("/debug/stats", func(c *gin.Context) {
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		c.JSON(http.StatusOK, gin.H{
			"goroutines":    runtime.NumGoroutine(),
			"heap_alloc":    m.HeapAlloc,
			"heap_inuse":    m.HeapInuse,
			"sys":           m.Sys,
			"stack_inuse":   m.StackInuse,
			"heap_idle":     m.HeapIdle,
			"heap_released": m.HeapReleased,
			"mspan_inuse":   m.MSpanInuse,
			"gc_sys":        m.GCSys,
			"other_sys":     m.OtherSys,
			"ws":            ws.Stats(),
		})
	})
	r.GET("/debug/gc", func(c *gin.Context) {
		runtime.GC()
		c.Status(http.StatusNoContent)
	})
	r.GET("/debug/vars", gin.WrapH(expvar.Handler()))
	r.GET("/debug/pprof/*name", func(c *gin.Context) {
		switch c.Param("name") {
		case "/cmdline":
			pprof.Cmdline(c.Writer, c.Request)
		case "/profile":
			pprof.Profile(c.Writer, c.Request)
		case "/symbol":
			pprof.Symbol(c.Writer, c.Request)
		case "/trace":
			pprof.Trace(c.Writer, c.Request)
		default:
			pprof.Index(c.Writer, c.Request)
		}
	})
}
