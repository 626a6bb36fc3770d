package layer

import (
	"encoding/json"
	"math"
)

// Message is what travels through a channel layer: a map whose "type" key names the event, as in
// Django Channels ({"type": "chat.message", "message": "hi"}).
//
// Values should be JSON-like so that every layer can carry them: string, bool, nil, numbers,
// []byte, []any and map[string]any (or Message). The in-memory layer copies a message once when it
// is sent and hands that copy to every local recipient, so handlers must treat a received Message
// as read-only.
type Message map[string]any

// Type returns the message's "type" value, or "" when it is missing or not a string.
func (m Message) Type() string {
	s, _ := m["type"].(string)
	return s
}

// Str returns the string at key.
func (m Message) Str(key string) (string, bool) {
	s, ok := m[key].(string)
	return s, ok
}

// Bool returns the bool at key.
func (m Message) Bool(key string) (bool, bool) {
	b, ok := m[key].(bool)
	return b, ok
}

// Int returns the integer at key. It accepts any Go integer type, and floats with no fractional part
// (JSON and msgpack decoders produce both).
func (m Message) Int(key string) (int64, bool) {
	switch v := m[key].(type) {
	case int:
		return int64(v), true
	case int8:
		return int64(v), true
	case int16:
		return int64(v), true
	case int32:
		return int64(v), true
	case int64:
		return v, true
	case uint8:
		return int64(v), true
	case uint16:
		return int64(v), true
	case uint32:
		return int64(v), true
	case uint64:
		if v > math.MaxInt64 {
			return 0, false
		}
		return int64(v), true
	case uint:
		if uint64(v) > math.MaxInt64 {
			return 0, false
		}
		return int64(v), true
	case float64:
		if v == math.Trunc(v) && v >= math.MinInt64 && v < math.MaxInt64 {
			return int64(v), true
		}
	case float32:
		f := float64(v)
		if f == math.Trunc(f) && f >= math.MinInt64 && f < math.MaxInt64 {
			return int64(f), true
		}
	case json.Number:
		i, err := v.Int64()
		return i, err == nil
	}
	return 0, false
}

// Float returns the number at key as a float64.
func (m Message) Float(key string) (float64, bool) {
	switch v := m[key].(type) {
	case float64:
		return v, true
	case float32:
		return float64(v), true
	case json.Number:
		f, err := v.Float64()
		return f, err == nil
	}
	if i, ok := m.Int(key); ok {
		return float64(i), true
	}
	return 0, false
}

// Bytes returns the []byte at key.
func (m Message) Bytes(key string) ([]byte, bool) {
	b, ok := m[key].([]byte)
	return b, ok
}

// Map returns the nested map at key.
func (m Message) Map(key string) (Message, bool) {
	switch v := m[key].(type) {
	case Message:
		return v, true
	case map[string]any:
		return Message(v), true
	}
	return nil, false
}

// Slice returns the list at key.
func (m Message) Slice(key string) ([]any, bool) {
	s, ok := m[key].([]any)
	return s, ok
}

// Decode fills v (a pointer, typically to a struct with json tags) from the message, through JSON.
func (m Message) Decode(v any) error {
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}

// Clone returns a deep copy of the JSON-like parts of m: nested maps, lists and byte slices are
// copied; other values are shared.
func (m Message) Clone() Message {
	if m == nil {
		return nil
	}
	out := make(Message, len(m))
	for k, v := range m {
		out[k] = cloneValue(v)
	}
	return out
}

func cloneValue(v any) any {
	switch v := v.(type) {
	case Message:
		return v.Clone()
	case map[string]any:
		return map[string]any(Message(v).Clone())
	case []any:
		out := make([]any, len(v))
		for i, e := range v {
			out[i] = cloneValue(e)
		}
		return out
	case []byte:
		return append([]byte(nil), v...)
	case []string:
		return append([]string(nil), v...)
	}
	return v
}
