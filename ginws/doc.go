// Package ginws brings Django Channels' programming model to Gin: a consumer per WebSocket
// connection, a Scope built from the handshake after the app's own middleware ran, typed events
// routed by their "type", groups, and a channel layer that HTTP handlers and background jobs can
// send through.
//
//	ws := ginws.New(ginws.Config{})
//	r.GET("/ws/chat/:room", authMiddleware, ws.Mount(func() ginws.Consumer { return new(Chat) }))
//	srv.RegisterOnShutdown(ws.OnShutdown)
//
// # Consumers
//
// A consumer embeds WebsocketConsumer or JSONConsumer[T] and overrides Connect, Receive (or
// ReceiveJSON) and Disconnect; it may declare Groups() and Events(). Connect runs before the HTTP
// response: returning without Accept refuses the handshake with 403 and no upgrade.
//
// # Concurrency
//
// The handlers of one consumer never run concurrently: client frames and layer events are queued
// and handled one at a time, in arrival order, by a goroutine that runs only while there is work
// (so an idle connection costs one parked reader goroutine and no buffers). Consumers need no
// locks for their own state. Sends (SendText, SendBinary, SendJSON), Close and the group methods
// are safe from any goroutine and never block: frames are queued, and everything queued for a
// client is written with one system call. A client that lets more than Config.OutboundLimit
// bytes pile up, or whose writes stay blocked, is closed with CloseSlowClient; it never slows a
// group send or another client. Server, Layer implementations and MemoryLayer are safe for
// concurrent use.
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
