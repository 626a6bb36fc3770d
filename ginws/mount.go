package ginws

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"runtime/debug"

	"ginws.dev/ginws/layer"

	"github.com/gin-gonic/gin"
	"github.com/gorilla/websocket"
)

// Mount returns a Gin handler that runs a consumer made by factory for every WebSocket handshake
// on the route. It goes after the app's own middleware, which fills the Scope:
//
//	ws := ginws.New(ginws.Config{})
//	r.GET("/ws/chat/:room/", middleware.RequireUser(), ws.Mount(func() ginws.Consumer { return new(ChatConsumer) }))
//
// For each handshake, in order: the origin is checked (403 if refused); the Scope is built; the
// connection caps and handshake rates of Config.Limits apply (429); the consumer gets a channel
// name and joins Config.Groups and its declared groups; Connect decides. Refusals are
// answered with an HTTP status and no upgrade. A request that is not a WebSocket handshake gets
// 426 Upgrade Required; during shutdown every handshake gets 503.
func (s *Server) Mount(factory func() Consumer) gin.HandlerFunc {
	return func(gc *gin.Context) {
		s.handshake(gc, factory)
	}
}

func (s *Server) handshake(gc *gin.Context, factory func() Consumer) {
	r := gc.Request
	if !websocket.IsWebSocketUpgrade(r) {
		gc.Header("Upgrade", "websocket")
		gc.Header("Sec-WebSocket-Version", "13")
		gc.AbortWithStatus(http.StatusUpgradeRequired)
		return
	}
	allowed := originChecked(gc)
	if !allowed {
		if s.cfg.CheckOrigin != nil {
			allowed = s.cfg.CheckOrigin(r)
		} else {
			allowed = sameOrigin(r)
		}
	}
	if !allowed {
		s.refused.Add(1)
		s.refusals.count(http.StatusForbidden)
		s.cfg.Logger.Debug("ginws: handshake refused: origin not allowed", "route", gc.FullPath(), "path", r.URL.Path, "origin", r.Header.Get("Origin"))
		gc.AbortWithStatus(http.StatusForbidden)
		return
	}

	c := newConn(s, NewScope(gc))
	if s.cfg.User != nil {
		c.user = s.cfg.User(c.scope)
	}
	if !s.track(c) {
		s.refused.Add(1)
		s.refusals.count(http.StatusServiceUnavailable)
		gc.AbortWithStatus(http.StatusServiceUnavailable)
		return
	}
	if !s.admit(c, gc.Writer) {
		s.forget(c)
		gc.Abort()
		return
	}
	c.hs = &handshake{w: gc.Writer, req: gc.Request}
	if t := handshakeExpiry(gc); !t.IsZero() {
		c.SetExpiry(t)
	}
	status, err := c.open(gc, factory)
	c.hs = nil
	if status == 0 {
		return // upgraded: the connection runs on its own goroutines now
	}
	s.forget(c)
	s.refused.Add(1)
	s.refusals.count(status) // -1: the upgrade failed
	if err != nil && status >= 500 {
		c.Logger().Error("ginws: handshake failed", "status", status, "error", err)
	} else if err != nil {
		c.Logger().Debug("ginws: handshake refused", "status", status, "reason", err)
	}
	if status > 0 {
		gc.AbortWithStatus(status)
	} else {
		gc.Abort() // gorilla already answered a failed upgrade
	}
}

// open runs a handshake: channel, groups, Connect. It returns 0 once the connection is accepted,
// -1 when the upgrade failed and gorilla has answered the request, or the HTTP status to refuse
// it with. c.hs is set while it runs.
func (c *Conn) open(gc *gin.Context, factory func() Consumer) (status int, err error) {
	s := c.srv
	consumer := factory()
	if consumer == nil {
		return http.StatusInternalServerError, errors.New("ginws: the consumer factory returned nil")
	}
	consumer.bind(c, consumer)
	c.consumer = consumer

	ctx := c.ctx
	l := s.cfg.Layer
	name, err := l.NewChannel(ctx, "specific")
	if err != nil {
		return http.StatusInternalServerError, fmt.Errorf("ginws: new channel: %w", err)
	}
	c.channel = name
	if s.cfg.Limits.Messages.on() {
		c.msgLimit = s.cfg.Limits.Messages.limiter()
	}
	if cr, ok := l.(layer.CapacityReporter); ok {
		c.inboxCap = int32(min(max(1, cr.Capacity(name)), 1<<30))
	}
	c.unsubscribe, err = layer.Listen(l, name, layer.Listener{
		Deliver: c.deliver,
		Wait:    c.waitForRoom,
		OnError: func(err error) { c.Logger().Warn("ginws: layer receive failed; retrying", "error", err) },
	})
	if err != nil {
		return http.StatusInternalServerError, fmt.Errorf("ginws: listen on %s: %w", name, err)
	}

	if er, ok := consumer.(EventRouter); ok {
		if err := c.setEvents(er.Events()); err != nil {
			c.release(ctx)
			return http.StatusInternalServerError, err
		}
	}
	if err := c.checkPresence(); err != nil {
		c.release(ctx)
		return http.StatusInternalServerError, err
	}
	if s.cfg.Groups != nil {
		for _, g := range s.cfg.Groups(c.scope) {
			if err := c.GroupAdd(ctx, g); err != nil {
				c.release(ctx)
				return http.StatusInternalServerError, fmt.Errorf("ginws: join Config.Groups group: %w", err)
			}
		}
	}
	if gm, ok := consumer.(GroupMember); ok {
		for _, g := range gm.Groups() {
			if err := c.GroupAdd(ctx, g); err != nil {
				c.release(ctx)
				return http.StatusInternalServerError, fmt.Errorf("ginws: join declared group: %w", err)
			}
		}
	}

	err = c.callConnect(ctx)
	c.mu.Lock()
	st := c.stateNow()
	if st == stateHandshake {
		c.toLocked(stateRefused) // Connect returned without accepting
		st = stateRefused
	}
	c.mu.Unlock()
	if st == stateRefused || st == stateRefusedShutdown {
		c.release(ctx)
		var re *RefuseError
		switch {
		case c.hs.upgradeFailed:
			return -1, err
		case errors.As(err, &re):
			return re.Status, err
		case err != nil:
			return http.StatusInternalServerError, err
		case st == stateRefusedShutdown:
			return http.StatusServiceUnavailable, ErrServerClosed
		default:
			return http.StatusForbidden, errors.New("Connect did not accept")
		}
	}
	s.accepted.Add(1)
	s.open.Add(1)
	if err != nil {
		c.failed("Connect", "", "", err)
	}
	c.trackPresence(ctx)
	c.start()
	return 0, nil
}

// callConnect runs Connect, turning a panic into an error.
func (c *Conn) callConnect(ctx context.Context) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("ginws: Connect panicked: %v\n%s", p, debug.Stack())
		}
	}()
	return c.consumer.Connect(ctx)
}

// release undoes a handshake that did not end in an accepted connection: it stops the layer's
// deliveries and leaves the groups joined so far.
func (c *Conn) release(ctx context.Context) {
	if c.unsubscribe != nil {
		c.unsubscribe()
		c.unsubscribe = nil
	}
	c.mu.Lock()
	if c.stateNow() == stateHandshake {
		c.toLocked(stateRefused)
	}
	c.toLocked(stateClosed)
	c.stopExpiryLocked()
	c.mu.Unlock()
	c.leaveGroups(ctx)
	c.cancel()
}
