// Package yjs serves Yjs documents to unmodified y-websocket clients from a Gin app, the way
// ypy-websocket's YjsConsumer does for Django Channels — and closes the holes of that design:
//
//   - one document per room and process, not per connection: a joiner is synced by the server,
//     not by whichever peers happen to answer;
//   - documents persist (Config.Store): a room that empties is unloaded from memory, and the next
//     client gets its document back;
//   - awareness (cursors, presence) is tracked per connection: when a connection ends — closed,
//     killed, or timed out without a close frame — the clients it published are removed for
//     everybody (see Awareness for what this does not guarantee);
//   - across processes, one layer subscription per room and process carries updates, awareness,
//     and a resync handshake that repairs lost messages.
//
// Mount the consumer on a catch-all route; a y-websocket client appends "/" and the room name to
// its server URL:
//
//	ws := ginws.New(ginws.Config{Layer: layer})
//	ys := yjs.New(ws, yjs.Config{Store: store})
//	r.GET("/yjs/*room", auth, ws.Mount(ys.Consumer))
//	// client: new WebsocketProvider("ws://host/yjs", "notes/2024", ydoc)
//
// On shutdown, call ws.Shutdown first (it closes the connections), then ys.Close (it saves the
// rooms).
//
// # Protocol
//
// The y-protocols messages of y-websocket, binary frames only: on connect the server sends sync
// step 1 and the known awareness states; it answers every sync step 1 with a step 2 holding what
// the client lacks; updates and step 2 from a client are validated, applied to the room and
// relayed to the other clients; awareness updates are relayed to every client, the sender
// included; query-awareness is answered with every state.
//
// A client's step 2 is cut down to what the room lacks before it is applied: Yjs puts its whole
// delete set into every step 2, so a client reconnecting to a document with deletions would
// otherwise have every other member receive that delete set again. A step 2 that adds nothing is
// dropped without a word, also from a read-only client.
//
// Validation follows what JavaScript peers can read, so one client cannot poison a room for the
// others: every integer (client IDs, clocks, lengths) must be at most 2^53-1, strings valid
// UTF-8, JSON content JSON. A text frame closes the connection with 1003, a malformed message
// with 1007, an update over MaxUpdateSize with 4413 (also a frame over the read limit, which
// ginws closes before reading it), one that would grow the document past MaxDocumentSize with
// 4413. y-websocket clients do not reconnect
// after a 44xx code; they do after any other.
//
// # Awareness
//
// Awareness client IDs are not authenticated, as in y-protocols and y-websocket's Node server:
// any connection may publish a state for any client ID, and a higher clock overwrites another
// client's presence. The server only limits what one connection can hold — MaxClientsPerConn IDs
// that it originates (re-sending states the room already holds, as every stock client does, is
// free), states of MaxAwarenessStateSize bytes, MaxAwarenessTotalSize bytes per room (larger
// states are ignored and logged, the connection stays open) — and removes the states a connection
// published when it ends, with their own clocks. Treat presence as what clients say about
// themselves, never as identity; put who a user is in Authorize and the document's own access
// rules.
//
// A y-protocols client that loses its connection drops its peers' states but keeps their clocks,
// and one that reconnects re-sends its state with its unchanged clock, which such peers ignore
// until the state's next renewal, up to 15 s later (after a server restart, every client is in
// that case). So the server answers the awareness message a y-websocket client sends right after
// its sync step 1 (its own state) with a null state for that client's ID, to that client alone:
// y-protocols clients answer a removal of their own state by re-sending it with the next clock,
// which every peer takes. It costs each connection one more awareness message to the room.
//
// # Access
//
// Config.Authorize picks NoAccess (handshake refused with 403), ReadOnly or ReadWrite per
// connection. A read-only client receives everything and may publish its awareness; its
// document changes are answered with the y-protocols permission-denied message and dropped.
//
// # Across processes
//
// Rooms talk through the ginws Server's channel layer, in the group GroupName(room) (with a
// Config.Namespace, GroupNameIn(namespace, room): Servers of different namespaces on one layer
// never share a room; give each its own Store or redisstore prefix too): updates and
// awareness changes cross once per process, and a room that loads (or every ResyncInterval)
// exchanges state vectors with the other holders, so a message the layer dropped is repaired.
// Use a shared Store (package redisstore) with a shared layer. Awareness states published
// through a process that crashed are not removed by it: they expire after AwarenessTimeout, as
// y-protocols clients expire them. Any process may send {"type": "doc_update", "update": <bytes>}
// to the group (ypy's send_doc_update); Server.Update does the same from Go and also stores the
// update.
//
// # Sizes
//
// A Yjs connection is accepted with its own limits, whatever the ginws Server's ReadLimit and
// OutboundLimit (which suit chat messages): it may send updates of up to Config.MaxUpdateSize
// (offline edits arrive as one sync step 2) and queue up to twice Config.MaxDocumentSize (a
// newcomer is sent the whole document in one frame).
package yjs
