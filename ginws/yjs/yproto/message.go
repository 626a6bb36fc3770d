// Package yproto reads and writes the y-protocols messages that Yjs clients (y-websocket and
// compatible providers) exchange with a server in binary WebSocket frames: sync (state vector,
// missing updates, live updates), awareness (cursors and presence), query-awareness and auth.
//
// The package only frames messages; it does not interpret Yjs updates (see package yupdate) and
// keeps no state. Decoded payloads alias the frame they came from.
//
// Frame layout (every integer a lib0 varuint):
//
//	sync:             0, syncType (0 step1 | 1 step2 | 2 update), varbytes payload
//	awareness:        1, varbytes awareness update
//	auth:             2, 0 (permission denied), varstring reason
//	query awareness:  3
//
// Concurrency: all functions are pure and safe for concurrent use.
package yproto

import (
	"errors"
	"fmt"

	"ginws.dev/ginws/yjs/internal/lib0"
)

// Message types (the first varuint of a frame).
const (
	MsgSync           = 0
	MsgAwareness      = 1
	MsgAuth           = 2
	MsgQueryAwareness = 3
)

// Sync message sub-types.
const (
	SyncStep1  = 0 // payload: the sender's encoded state vector
	SyncStep2  = 1 // payload: an update with what the receiver of step 1 lacks
	SyncUpdate = 2 // payload: a live update
)

// authPermissionDenied is the only auth sub-type y-protocols defines.
const authPermissionDenied = 0

var (
	// ErrMalformed is wrapped by every error Decode and DecodeAwareness return.
	ErrMalformed = errors.New("yproto: malformed message")
	// ErrUnknownType is returned by Decode for a message type, sync type or auth type that
	// y-protocols does not define. It wraps ErrMalformed. For an unknown message type Decode also
	// returns the Message with its Type set, so a server can log and ignore it as y-websocket does.
	ErrUnknownType = fmt.Errorf("%w: unknown message type", ErrMalformed)
)

// Message is one decoded frame.
type Message struct {
	Type     uint64 // MsgSync, MsgAwareness, MsgAuth or MsgQueryAwareness
	SyncType uint64 // SyncStep1, SyncStep2 or SyncUpdate when Type is MsgSync
	// Payload is the state vector (SyncStep1), the update (SyncStep2, SyncUpdate) or the awareness
	// update (MsgAwareness). It aliases the frame passed to Decode.
	Payload []byte
	Reason  string // why permission was denied, when Type is MsgAuth
}

// Decode reads one frame. Like y-protocols, it ignores bytes after the message. Payloads are not
// validated here: pass a sync payload to yupdate.Validate and an awareness payload to
// DecodeAwareness before trusting them.
func Decode(b []byte) (Message, error) {
	d := lib0.NewDecoder(b)
	typ, err := d.ReadVarUint()
	if err != nil {
		return Message{}, malformed("message type", err)
	}
	m := Message{Type: typ}
	switch typ {
	case MsgSync:
		if m.SyncType, err = d.ReadVarUint(); err != nil {
			return Message{}, malformed("sync type", err)
		}
		if m.SyncType > SyncUpdate {
			return Message{}, fmt.Errorf("%w: sync type %d", ErrUnknownType, m.SyncType)
		}
		if m.Payload, err = d.ReadVarBytes(); err != nil {
			return Message{}, malformed("sync payload", err)
		}
	case MsgAwareness:
		if m.Payload, err = d.ReadVarBytes(); err != nil {
			return Message{}, malformed("awareness payload", err)
		}
	case MsgAuth:
		sub, err := d.ReadVarUint()
		if err != nil {
			return Message{}, malformed("auth type", err)
		}
		if sub != authPermissionDenied {
			return Message{}, fmt.Errorf("%w: auth type %d", ErrUnknownType, sub)
		}
		if m.Reason, err = d.ReadVarString(); err != nil {
			return Message{}, malformed("auth reason", err)
		}
	case MsgQueryAwareness:
	default:
		return m, fmt.Errorf("%w %d", ErrUnknownType, typ)
	}
	return m, nil
}

func malformed(what string, err error) error {
	return fmt.Errorf("%w: %s: %w", ErrMalformed, what, err)
}

// AppendSyncStep1 appends a sync step 1 frame carrying an encoded state vector.
func AppendSyncStep1(dst, stateVector []byte) []byte {
	return appendSync(dst, SyncStep1, stateVector)
}

// AppendSyncStep2 appends a sync step 2 frame carrying an update.
func AppendSyncStep2(dst, update []byte) []byte { return appendSync(dst, SyncStep2, update) }

// AppendSyncUpdate appends a sync update frame.
func AppendSyncUpdate(dst, update []byte) []byte { return appendSync(dst, SyncUpdate, update) }

func appendSync(dst []byte, syncType uint64, payload []byte) []byte {
	dst = append(dst, MsgSync, byte(syncType))
	return lib0.AppendVarBytes(dst, payload)
}

// AppendAwareness appends an awareness frame carrying an encoded awareness update (see
// AppendAwarenessUpdate).
func AppendAwareness(dst, awarenessUpdate []byte) []byte {
	dst = append(dst, MsgAwareness)
	return lib0.AppendVarBytes(dst, awarenessUpdate)
}

// AppendQueryAwareness appends a query-awareness frame, which asks the peer for all awareness
// states it knows.
func AppendQueryAwareness(dst []byte) []byte { return append(dst, MsgQueryAwareness) }

// AppendPermissionDenied appends an auth frame that tells a y-websocket client it may not access
// the document; the client reports reason to its permission-denied handler.
func AppendPermissionDenied(dst []byte, reason string) []byte {
	dst = append(dst, MsgAuth, authPermissionDenied)
	return lib0.AppendVarString(dst, reason)
}
