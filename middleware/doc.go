// Package middleware is ginws' auth stack: ordinary gin.HandlerFunc factories that run before
// ginws' Mount and fill the Scope, the Gin counterpart of Django Channels' AuthMiddlewareStack and
// AllowedHostsOriginValidator.
//
//	store := sessions.NewFilesystemStore(dir, hashKey)
//	r.POST("/login", loginView)                         // writes the session, as usual
//	r.Use(middleware.AllowedHosts("chat.example.com")) // Host not ours → 400
//	r.GET("/ws/chat/:room",
//		middleware.Origins(middleware.OriginConfig{Allowed: []string{"chat.example.com"}}),
//		middleware.Sessions(store, "session"),          // cookies → session
//		middleware.LoadUser(middleware.SessionUser("user_id", findUser)), // session → user
//		middleware.RequireUser(),                       // anonymous → 403, before the upgrade
//		ws.Mount(newChatConsumer))
//
// Consumers read what the stack found through typed accessors: SessionFrom, UserFrom,
// ClaimsFrom. HTTP views read the same values with the *FromGin variants.
//
// Every refusal happens before the upgrade and is answered with an HTTP status; no token, cookie
// or session value is ever written to a log.
package middleware
