// Command jwt is an API-style app whose WebSocket accepts a JSON Web Token instead of a session:
// from "Authorization: Bearer" (servers, mobile apps) or, from browsers, which cannot set headers on
// a WebSocket, as the subprotocol pair ["bearer", TOKEN].
//
//	SECRET=$(openssl rand -hex 32)       # or any 64 hex digits; the server and -mint must share it
//	go run ./examples/jwt -addr 127.0.0.1:8003 -secret $SECRET
//	TOKEN=$(go run ./examples/jwt -secret $SECRET -mint ada)
//	go run ./examples/wsclient -H "Authorization: Bearer $TOKEN" ws://127.0.0.1:8003/ws/notifications
//
// Or open http://127.0.0.1:8003/ in a browser: the page fetches a token and sends it the way
// browsers can, as the subprotocol pair ["bearer", TOKEN]. GET /token?user=NAME mints demo tokens
// for anyone who asks — it stands in for your real identity provider; `-mint NAME` prints one and
// exits.
//
// A socket lives no longer than its token: when the token expires (plus the 30 s leeway) the
// server closes it with 3000 "token expired" (ginws.CloseTokenExpired). To stay connected, the
// client sends a fresh token before then, {"type": "refresh", "token": TOKEN}; the server checks it
// with the handshake's rules (same algorithm, key, issuer, audience and subject) and answers
// {"type": "refreshed", "expires": ...}, or {"type": "error", ...} and keeps the old deadline. The
// page does this a minute before its token expires.
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/golang-jwt/jwt/v5"

	"ginws.dev/examples/internal/serve"
	"ginws.dev/ginws"
	"ginws.dev/ginws/layer"
	"ginws.dev/middleware"
)

const (
	issuer   = "ginws-demo"
	audience = "notifications"
)

// Mint signs a demo token for user, valid for ttl.
func Mint(secret []byte, user string, ttl time.Duration) (string, error) {
	now := time.Now()
	return jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.RegisteredClaims{
		Subject:   user,
		Issuer:    issuer,
		Audience:  jwt.ClaimStrings{audience},
		IssuedAt:  jwt.NewNumericDate(now),
		ExpiresAt: jwt.NewNumericDate(now.Add(ttl)),
	}).SignedString(secret)
}

// NotificationConsumer greets the token's subject and echoes what it sends.
type NotificationConsumer struct {
	ginws.JSONConsumer[map[string]any]
	user string
}

func (c *NotificationConsumer) Connect(ctx context.Context) error {
	claims, ok := middleware.ClaimsFrom[*jwt.RegisteredClaims](c.Scope())
	if !ok {
		return nil // cannot happen behind JWT: refused with 403
	}
	c.user = claims.Subject
	if err := layer.ValidateGroupName("user." + c.user); err != nil {
		return ginws.Refuse(http.StatusForbidden, "unusable subject")
	}
	if err := c.GroupAdd(ctx, "user."+c.user); err != nil {
		return err
	}
	if err := c.Accept(); err != nil {
		return err
	}
	return c.SendJSON(gin.H{"type": "hello", "user": c.user, "expires": claims.ExpiresAt.Time.UTC().Format(time.RFC3339)})
}

func (c *NotificationConsumer) ReceiveJSON(ctx context.Context, in map[string]any) error {
	if in["type"] == "refresh" {
		tok, _ := in["token"].(string)
		claims, err := middleware.RefreshToken(c.Conn, tok)
		if err != nil {
			return c.SendJSON(gin.H{"type": "error", "error": err.Error()})
		}
		exp, _ := claims.GetExpirationTime()
		return c.SendJSON(gin.H{"type": "refreshed", "expires": exp.Time.UTC().Format(time.RFC3339)})
	}
	return c.SendJSON(gin.H{"type": "echo", "user": c.user, "content": in})
}

func (c *NotificationConsumer) Events() ginws.Events {
	return ginws.Events{"notify": func(ctx context.Context, ev layer.Message) error {
		return c.SendJSON(gin.H{"type": "notification", "message": ev["message"]})
	}}
}

// NewApp returns the routes.
func NewApp(secret []byte, log *slog.Logger) (*gin.Engine, *ginws.Server) {
	ws := ginws.New(ginws.Config{Logger: log})
	r := gin.New()
	r.Use(gin.Recovery())
	auth := middleware.JWT(middleware.JWTConfig{
		Algorithms: []string{"HS256"},
		Key:        secret,
		Issuer:     issuer,
		Audience:   audience,
		Leeway:     30 * time.Second,
		Sources:    []middleware.TokenSource{middleware.FromHeader, middleware.FromSubprotocol},
		NewClaims:  func() jwt.Claims { return new(jwt.RegisteredClaims) },
		Logger:     log,
	})
	r.GET("/ws/notifications", auth, ws.Mount(func() ginws.Consumer { return new(NotificationConsumer) }))

	// POST /notify/:user, with a token, sends a notification to every connection of :user.
	r.POST("/notify/:user", auth, func(c *gin.Context) {
		err := ws.Layer().GroupSend(c, "user."+c.Param("user"), layer.Message{"type": "notify", "message": c.PostForm("message")})
		if err != nil {
			c.String(http.StatusBadRequest, err.Error())
			return
		}
		c.Status(http.StatusAccepted)
	})
	r.GET("/token", func(c *gin.Context) {
		user := c.Query("user")
		if user == "" || len(user) > 64 {
			c.String(http.StatusBadRequest, "?user=NAME")
			return
		}
		tok, err := Mint(secret, user, 15*time.Minute)
		if err != nil {
			c.String(http.StatusInternalServerError, "mint failed")
			return
		}
		c.JSON(http.StatusOK, gin.H{"token": tok})
	})
	r.GET("/", func(c *gin.Context) { c.Data(http.StatusOK, "text/html; charset=utf-8", page) })
	return r, ws
}

var page = []byte(`<!DOCTYPE html>
<meta charset="utf-8"><title>ginws JWT</title>
<p>Token for <input id="user" value="ada"> <button id="go">connect</button></p>
<pre id="log"></pre>
<script>
  const log = t => { document.querySelector("#log").textContent += t + "\n"; };
  document.querySelector("#go").onclick = async () => {
    const user = document.querySelector("#user").value;
    const {token} = await (await fetch("/token?user=" + encodeURIComponent(user))).json();
    // Browsers cannot set headers on a WebSocket: the token rides in the subprotocol list.
    const s = new WebSocket("ws://" + location.host + "/ws/notifications", ["bearer", token]);
    s.onopen = () => { log("open, protocol " + s.protocol); s.send(JSON.stringify({hi: "there"})); };
    s.onmessage = e => {
      log(e.data);
      const m = JSON.parse(e.data);
      if (m.type !== "hello" && m.type !== "refreshed") return;
      // A minute before the token expires, fetch a fresh one and hand it to the socket.
      setTimeout(async () => {
        const {token} = await (await fetch("/token?user=" + encodeURIComponent(user))).json();
        if (s.readyState === WebSocket.OPEN) s.send(JSON.stringify({type: "refresh", token}));
      }, Math.max(0, Date.parse(m.expires) - Date.now() - 60000));
    };
    s.onclose = e => log("closed " + e.code);
  };
</script>`)

func main() {
	addr := flag.String("addr", "127.0.0.1:8003", "listen on `host:port`")
	secretHex := flag.String("secret", "", "HMAC secret, hex, at least 32 bytes (default: random per run)")
	mint := flag.String("mint", "", "print a 15-minute token for `user` and exit")
	flag.Parse()
	secret, err := parseSecret(*secretHex)
	if err != nil {
		fmt.Fprintln(os.Stderr, "jwt:", err)
		os.Exit(2)
	}
	if *mint != "" {
		tok, err := Mint(secret, *mint, 15*time.Minute)
		if err != nil {
			fmt.Fprintln(os.Stderr, "jwt:", err)
			os.Exit(1)
		}
		fmt.Println(tok)
		return
	}
	log := serve.Logger()
	r, ws := NewApp(secret, log)
	if err := serve.Run(*addr, r, ws, log); err != nil {
		fmt.Fprintln(os.Stderr, "jwt:", err)
		os.Exit(1)
	}
}

func parseSecret(h string) ([]byte, error) {
	if h == "" {
		b := make([]byte, 32)
		_, err := rand.Read(b)
		return b, err
	}
	b, err := hex.DecodeString(h)
	if err != nil || len(b) < 32 {
		return nil, errors.New("-secret must be at least 32 bytes, hex-encoded")
	}
	return b, nil
}
