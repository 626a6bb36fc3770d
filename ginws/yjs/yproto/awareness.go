package yproto

import (
	"encoding/json"
	"fmt"

	"ginws.dev/ginws/yjs/internal/lib0"
)

// AwarenessEntry is one client's state in an awareness update.
type AwarenessEntry struct {
	ClientID uint64
	Clock    uint64 // the state's version; peers keep the entry with the highest clock
	// State is the client's state as JSON text, such as {"user":{"name":"Ann"}}. The text null
	// means the client went away. DecodeAwareness returns it aliasing its input.
	State []byte
}

// IsRemoval reports whether the entry announces that the client left (its state is null).
func (e AwarenessEntry) IsRemoval() bool { return string(e.State) == "null" }

// DecodeAwareness reads an awareness update: a varuint count, then per client its ID, clock and
// state as a JSON string. Every state must be valid JSON, because y-protocols calls JSON.parse
// on it and a peer receiving anything else would throw, and client IDs and clocks must be at most
// 2^53-1 (Number.MAX_SAFE_INTEGER), beyond which lib0 in JavaScript throws. Errors wrap
// ErrMalformed.
func DecodeAwareness(update []byte) ([]AwarenessEntry, error) {
	d := lib0.NewDecoder(update)
	n, err := d.ReadVarUint()
	if err != nil {
		return nil, malformed("awareness count", err)
	}
	// An entry takes at least 3 bytes; never allocate for a count the input cannot hold.
	if n > uint64(d.Remaining()/3) {
		return nil, fmt.Errorf("%w: awareness count %d exceeds the input", ErrMalformed, n)
	}
	entries := make([]AwarenessEntry, 0, n)
	for i := uint64(0); i < n; i++ {
		var e AwarenessEntry
		if e.ClientID, err = d.ReadVarUint(); err != nil {
			return nil, malformed("awareness client", err)
		}
		if e.Clock, err = d.ReadVarUint(); err != nil {
			return nil, malformed("awareness clock", err)
		}
		if e.State, err = d.ReadVarStringBytes(); err != nil {
			return nil, malformed("awareness state", err)
		}
		if !json.Valid(e.State) {
			return nil, fmt.Errorf("%w: awareness state of client %d is not JSON", ErrMalformed, e.ClientID)
		}
		entries = append(entries, e)
	}
	return entries, nil
}

// AppendAwarenessUpdate appends an awareness update holding entries. A nil or empty State is
// written as null (the client left).
func AppendAwarenessUpdate(dst []byte, entries []AwarenessEntry) []byte {
	dst = lib0.AppendVarUint(dst, uint64(len(entries)))
	for _, e := range entries {
		dst = lib0.AppendVarUint(dst, e.ClientID)
		dst = lib0.AppendVarUint(dst, e.Clock)
		state := e.State
		if len(state) == 0 {
			state = []byte("null")
		}
		dst = lib0.AppendVarBytes(dst, state)
	}
	return dst
}
