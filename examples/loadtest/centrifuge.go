package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// The "centrifuge" server (cmd/centrifugechat) speaks centrifuge's JSON client protocol on the
// contract's socket, /ws/chat/ROOM/. This file is the adapter a client with wireCentrifuge uses,
// as much of the protocol as the chat contract needs:
//
//   - joining: one frame with the connect command (no token: the server takes the user from the
//     session cookie, as centrifuge's Credentials) and the subscribe command for the channel ROOM;
//     the client is in the room once both replies came back without an error.
//   - sending: the contract's {"message": ...} is the data of a publish command into ROOM. The
//     server answers the sender with a publish reply, which the reader skips.
//   - receiving: a publication push, {"push":{"channel":ROOM,"pub":{"data":{"message":...},
//     "info":{"user":USER,"client":ID}}}}, is the contract's {"message": ..., "user": USER}: the
//     same message, and the user attached by the server (centrifuge's ClientInfo). It goes through
//     the same order checks as every other server's messages; one without a user counts as garbled.
//   - pings: the server's ping, an empty reply {}, is answered with an empty command {}, as
//     centrifuge's SDKs do (the server disconnects a client that does not answer).
//
// Any other push (a disconnect, an unsubscribe) or a reply with an error counts as garbled, so it
// fails the run.

// cfSession is a centrifuge client's protocol state.
type cfSession struct {
	mu      sync.Mutex // the reader answers pings while the room's sender publishes
	nextID  uint32     // the id of the last command sent
	channel []byte     // the room's channel, as a JSON string
	buf     []byte     // the publish command being written, under mu
}

var (
	cfPing    = []byte("{}")
	cfPush    = []byte(`{"push":`)
	cfPub     = []byte(`"pub":`)
	cfUser    = []byte(`"info":{"user":"`)
	cfReplyID = []byte(`{"id":`)
	cfError   = []byte(`"error":`)
)

// centrifugeJoin connects and subscribes to the room's channel, and returns once the server has
// accepted both: from then on the client receives every publication of the room.
func (c *Client) centrifugeJoin() error {
	channel, _ := json.Marshal(c.room.Name)
	c.cf = &cfSession{nextID: 2, channel: channel}
	join := []byte(`{"id":1,"connect":{}}` + "\n" + `{"id":2,"subscribe":{"channel":` + string(channel) + `}}`)
	_ = c.conn.SetWriteDeadline(time.Now().Add(30 * time.Second))
	if err := c.conn.WriteMessage(websocket.TextMessage, join); err != nil {
		return fmt.Errorf("centrifuge connect: %w", err)
	}
	_ = c.conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	defer func() { _ = c.conn.SetReadDeadline(time.Time{}) }()
	connected, subscribed := false, false
	for !connected || !subscribed {
		_, data, err := c.conn.ReadMessage()
		if err != nil {
			return fmt.Errorf("centrifuge connect/subscribe: %w", err)
		}
		for line := range bytes.SplitSeq(data, []byte{'\n'}) {
			if len(line) == 0 {
				continue
			}
			if bytes.Equal(line, cfPing) {
				if err := c.centrifugePong(); err != nil {
					return err
				}
				continue
			}
			var r struct {
				ID    uint32          `json:"id"`
				Error json.RawMessage `json:"error"`
			}
			if err := json.Unmarshal(line, &r); err != nil || r.Error != nil || (r.ID != 1 && r.ID != 2) {
				return fmt.Errorf("centrifuge connect/subscribe: got %s", line)
			}
			connected = connected || r.ID == 1
			subscribed = subscribed || r.ID == 2
		}
	}
	return nil
}

// centrifugeLine reads one line the server sent. For a publication it returns the line, in which
// parseMessage finds the contract's message (the publication's data); it answers a ping, skips a
// reply to the client's publish, and counts anything else as garbled.
func (c *Client) centrifugeLine(line []byte) ([]byte, bool) {
	switch {
	case bytes.HasPrefix(line, cfPush):
		if !bytes.Contains(line, cfPub) {
			c.bad.Add(1) // a disconnect or unsubscribe push: the room lost this member
			return nil, false
		}
		if i := bytes.Index(line, cfUser); i < 0 || len(line) <= i+len(cfUser) || line[i+len(cfUser)] == '"' {
			c.bad.Add(1) // no user: not the contract's message
			return nil, false
		}
		return line, true
	case bytes.Equal(line, cfPing):
		_ = c.centrifugePong()
	case bytes.HasPrefix(line, cfReplyID):
		if bytes.Contains(line, cfError) {
			c.bad.Add(1) // the server refused a publish
		}
	default:
		c.bad.Add(1)
	}
	return nil, false
}

// centrifugePublish sends msg, the contract's {"message": ...}, as a publication into the room.
func (c *Client) centrifugePublish(msg []byte) error {
	s := c.cf
	s.mu.Lock()
	defer s.mu.Unlock()
	s.nextID++
	b := append(s.buf[:0], `{"id":`...)
	b = strconv.AppendUint(b, uint64(s.nextID), 10)
	b = append(b, `,"publish":{"channel":`...)
	b = append(b, s.channel...)
	b = append(b, `,"data":`...)
	b = append(b, msg...)
	b = append(b, "}}"...)
	s.buf = b
	_ = c.conn.SetWriteDeadline(time.Now().Add(30 * time.Second))
	return c.conn.WriteMessage(websocket.TextMessage, b)
}

// centrifugePong answers the server's ping.
func (c *Client) centrifugePong() error {
	c.cf.mu.Lock()
	defer c.cf.mu.Unlock()
	_ = c.conn.SetWriteDeadline(time.Now().Add(30 * time.Second))
	return c.conn.WriteMessage(websocket.TextMessage, cfPing)
}
