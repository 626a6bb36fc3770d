// Package ginws brings Django Channels' programming model to Gin: a consumer per WebSocket
// connection, a Scope built from the handshake after the app's own middleware ran, typed events
// routed by their "type", groups, and a channel layer that HTTP handlers and background jobs can
// send through.
//
//	ws := ginws.New(ginws.Config{})
//	chat := ws.Mount(func() ginws.Consumer { return new(Chat) })
//	r.GET("/ws/chat/:room/", middleware.RequireUser(), chat) // after the app's session middleware
//	srv := ws.HTTPServer(":8000", r)                          // srv.Shutdown gives sockets 1001
//
// # Consumers
//
// A consumer embeds WebsocketConsumer or JSONConsumer[T] and overrides Connect, Receive (or
// ReceiveJSON) and Disconnect; it may declare Groups() and Events(). Connect runs before the HTTP
// response: returning without Accept refuses the handshake with 403 and no upgrade.
//
// # Concurrency
//
// The handlers of one consumer never run concurrently: client messages and layer events are
// queued and handled one at a time, in arrival order. Consumers need no locks for their own state.
// Sends (SendText, SendBinary, SendJSON, SendPrepared), Close and the group methods are safe from
// any goroutine and never block: frames are queued, and everything queued for a client is written
// with one system call (one per OutboundLimit of bytes, for more). A send that returns nil is
// written before the connection's close frame unless the socket fails first or the client is
// closed as slow (what is queued for it is then dropped); once the connection is closing, or the
// answer to the client's close is queued, sends return ErrClosed. A client that lets more than
// Config.OutboundLimit bytes pile up, or whose writes stay blocked, is closed with
// CloseSlowClient; it never slows a group send or another client. Server, Layer implementations
// and layer.Memory are safe for concurrent use.
//
// An accepted connection runs on one reader goroutine (parked in a one-byte read while idle, with
// no buffer), a pump goroutine that exists only while there is work (it runs the handlers, then
// writes), and — with a layer that cannot push — one goroutine polling the layer. Other goroutines
// only call in: the layer delivering events, the server's single ping timer, close timers, and
// whoever sends. A connection's state (handshake, open, closing, ended...) changes in one place,
// under its lock, which is never held across I/O, logging or a callback; see conn_state.go.
//
// # Errors and close codes
//
// A handler's error closes its connection with 1011 and is logged; a *CloseError closes with its
// own code. A handler panic closes only its connection (1011); Disconnect still runs and the
// connection's groups are left. Bad client input gets a close code and a log line — 1002 for
// protocol errors, 1007 for invalid UTF-8 or JSON, 1009 over ReadLimit — and never crashes the
// process. See the Close* constants.
//
// # Testing
//
// Package wstest is the counterpart of Channels' WebsocketCommunicator, over a real in-process
// server; package layertest is the conformance suite for channel layer backends.
package ginws
