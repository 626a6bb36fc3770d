package redislayer

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"unicode/utf8"
	"unsafe"

	"github.com/vmihailenco/msgpack/v5"

	"ginws.dev/ginws/layer"
)

// The wire format of a queued message, as channels_redis 4 writes it: 12 random bytes (so that equal
// messages stay distinct members of the sorted set) followed by msgpack of the message map, with
// []byte as msgpack bin (use_bin_type=True). A message for process-local channels carries the key
// "__asgi_channel__": the full channel name for Send, the list of channel names for GroupSend.

const (
	randomPrefixLen = 12
	channelKey      = "__asgi_channel__"
	// posKey carries the group and position of a message of a group with history (history.go):
	// [group, "<offset>-<epoch>"]. It is not part of the message handed to the recipients.
	posKey   = "__ginws_pos__"
	maxDepth = 64 // nesting accepted when encoding or decoding
)

var (
	// ErrUnsupportedValue is wrapped by the error a send returns when the message holds a value
	// that msgpack (and so Django) cannot carry, such as a struct or a channel.
	ErrUnsupportedValue = errors.New("redislayer: value cannot be sent through Redis")
	// ErrReservedKey is returned when a message already holds the key "__asgi_channel__", which
	// the layer uses to route process-local messages (channels_redis refuses it too).
	ErrReservedKey = errors.New(`redislayer: message uses the reserved key "__asgi_channel__"`)
	// ErrBadMessage is wrapped by decoding errors: a queued member that is not a channels_redis
	// message. The receive loop counts and skips such members.
	ErrBadMessage = errors.New("redislayer: undecodable message")
)

// body is a message encoded once for any number of recipients: the msgpack of its entries without
// the map header, so that each Redis key's copy can append its own "__asgi_channel__" entry.
type body struct {
	entries []byte
	n       int // number of entries
}

func encodeBody(msg layer.Message) (body, error) {
	if msg == nil {
		return body{}, errors.New("redislayer: message is nil")
	}
	if _, ok := msg[channelKey]; ok {
		return body{}, ErrReservedKey
	}
	var buf bytes.Buffer
	enc := msgpack.GetEncoder()
	defer msgpack.PutEncoder(enc)
	enc.Reset(&buf)
	for k, v := range msg {
		if err := encodeStr(enc, k); err != nil {
			return body{}, fmt.Errorf("%w: key %q: %w", ErrUnsupportedValue, k, err)
		}
		if err := encodeValue(enc, v, 0); err != nil {
			return body{}, fmt.Errorf("%w: key %q: %w", ErrUnsupportedValue, k, err)
		}
	}
	return body{entries: buf.Bytes(), n: len(msg)}, nil
}

func encodeValue(e *msgpack.Encoder, v any, depth int) error {
	if depth > maxDepth {
		return errors.New("nested too deeply (a cycle?)")
	}
	switch v := v.(type) {
	case nil:
		return e.EncodeNil()
	case string:
		return encodeStr(e, v)
	case []byte:
		if v == nil {
			v = []byte{} // bin, not nil: Python sees b""
		}
		return e.EncodeBytes(v)
	case bool:
		return e.EncodeBool(v)
	case int:
		return e.EncodeInt(int64(v))
	case int8:
		return e.EncodeInt(int64(v))
	case int16:
		return e.EncodeInt(int64(v))
	case int32:
		return e.EncodeInt(int64(v))
	case int64:
		return e.EncodeInt(v)
	case uint:
		return e.EncodeUint(uint64(v))
	case uint8:
		return e.EncodeUint(uint64(v))
	case uint16:
		return e.EncodeUint(uint64(v))
	case uint32:
		return e.EncodeUint(uint64(v))
	case uint64:
		return e.EncodeUint(v)
	case float32:
		return e.EncodeFloat32(v)
	case float64:
		return e.EncodeFloat64(v)
	case json.Number:
		if i, err := v.Int64(); err == nil {
			return e.EncodeInt(i)
		}
		if f, err := v.Float64(); err == nil {
			return e.EncodeFloat64(f)
		}
		return encodeStr(e, string(v))
	case []any:
		if err := e.EncodeArrayLen(len(v)); err != nil {
			return err
		}
		for _, x := range v {
			if err := encodeValue(e, x, depth+1); err != nil {
				return err
			}
		}
		return nil
	case []string:
		if err := e.EncodeArrayLen(len(v)); err != nil {
			return err
		}
		for _, x := range v {
			if err := encodeStr(e, x); err != nil {
				return err
			}
		}
		return nil
	case layer.Message:
		return encodeMap(e, v, depth)
	case map[string]any:
		return encodeMap(e, v, depth)
	}
	return fmt.Errorf("type %T", v)
}

// errInvalidUTF8 is why a string is refused: msgpack str must be UTF-8, and channels_redis decodes
// strictly (raw=False), so Django's receive would fail on the message after popping it. Send
// binary data as []byte.
var errInvalidUTF8 = errors.New("string is not valid UTF-8 (send binary data as []byte)")

func encodeStr(e *msgpack.Encoder, s string) error {
	if !utf8.ValidString(s) {
		return errInvalidUTF8
	}
	return e.EncodeString(s)
}

func encodeMap(e *msgpack.Encoder, m map[string]any, depth int) error {
	if err := e.EncodeMapLen(len(m)); err != nil {
		return err
	}
	for k, x := range m {
		if err := encodeStr(e, k); err != nil {
			return fmt.Errorf("map key: %w", err)
		}
		if err := encodeValue(e, x, depth+1); err != nil {
			return err
		}
	}
	return nil
}

// member returns the sorted-set member for one Redis key: random prefix, map header, the body, and
// the routing entry when channels is not empty (a string for Send, a list for GroupSend).
func (b body) member(rnd [randomPrefixLen]byte, single string, group []string) []byte {
	return b.memberAt(rnd, single, group, "", layer.Position{})
}

// memberAt is member with the posKey entry of a message of group g at pos, unless pos is zero.
func (b body) memberAt(rnd [randomPrefixLen]byte, single string, group []string, g string, pos layer.Position) []byte {
	out := make([]byte, 0, randomPrefixLen+5+len(b.entries)+24+len(single)+len(group)*80)
	out = append(out, rnd[:]...)
	n := b.n
	if single != "" || group != nil {
		n++
	}
	if !pos.IsZero() {
		n++
	}
	out = appendMapHeader(out, n)
	out = append(out, b.entries...)
	if !pos.IsZero() {
		out = appendStr(out, posKey)
		out = appendArrayHeader(out, 2)
		out = appendStr(appendStr(out, g), pos.String())
	}
	switch {
	case single != "":
		out = appendStr(appendStr(out, channelKey), single)
	case group != nil:
		out = appendStr(out, channelKey)
		out = appendArrayHeader(out, len(group))
		for _, c := range group {
			out = appendStr(out, c)
		}
	}
	return out
}

func randomPrefix() (p [randomPrefixLen]byte) {
	binary.LittleEndian.PutUint64(p[:8], rand.Uint64())
	binary.LittleEndian.PutUint32(p[8:], rand.Uint32())
	return p
}

func appendMapHeader(b []byte, n int) []byte {
	switch {
	case n < 16:
		return append(b, 0x80|byte(n))
	case n < 1<<16:
		return binary.BigEndian.AppendUint16(append(b, 0xde), uint16(n))
	}
	return binary.BigEndian.AppendUint32(append(b, 0xdf), uint32(n))
}

func appendArrayHeader(b []byte, n int) []byte {
	switch {
	case n < 16:
		return append(b, 0x90|byte(n))
	case n < 1<<16:
		return binary.BigEndian.AppendUint16(append(b, 0xdc), uint16(n))
	}
	return binary.BigEndian.AppendUint32(append(b, 0xdd), uint32(n))
}

func appendStr(b []byte, s string) []byte {
	switch n := len(s); {
	case n < 32:
		b = append(b, 0xa0|byte(n))
	case n < 1<<8:
		b = append(b, 0xd9, byte(n))
	case n < 1<<16:
		b = binary.BigEndian.AppendUint16(append(b, 0xda), uint16(n))
	default:
		b = binary.BigEndian.AppendUint32(append(b, 0xdb), uint32(n))
	}
	return append(b, s...)
}

// decoded is one queued message after decoding: the message without its routing entry, and the
// channels it is for (none when the entry is missing, as for messages sent to a normal channel).
type decoded struct {
	msg      layer.Message
	channels []string
	group    string         // from posKey, for a message of a group with history
	pos      layer.Position // from posKey
}

// decodeMember decodes a sorted-set member written by this layer or by channels_redis. It never
// panics on malformed input: the structure is checked (lengths within the buffer, nesting depth)
// before the msgpack decoder sees it. The channel names are substrings of member (no copy: a group
// message names every local member), in the order written; a name listed twice stays twice (the
// receive loop delivers it once).
func decodeMember(member string) (decoded, error) {
	if len(member) < randomPrefixLen {
		return decoded{}, fmt.Errorf("%w: %d bytes is shorter than the random prefix", ErrBadMessage, len(member))
	}
	body := member[randomPrefixLen:]
	b := unsafe.Slice(unsafe.StringData(body), len(body)) // read only
	if end, err := skipValue(b, 0, 0); err != nil {
		return decoded{}, fmt.Errorf("%w: %w", ErrBadMessage, err)
	} else if end != len(b) {
		return decoded{}, fmt.Errorf("%w: %d trailing bytes", ErrBadMessage, len(b)-end)
	}
	r := strings.NewReader(body)
	dec := msgpack.GetDecoder()
	defer msgpack.PutDecoder(dec)
	dec.Reset(r)
	n, err := dec.DecodeMapLen()
	if err != nil || n < 0 {
		return decoded{}, fmt.Errorf("%w: not a map", ErrBadMessage)
	}
	out := decoded{msg: make(layer.Message, n)}
	for i := 0; i < n; i++ {
		k, err := dec.DecodeString()
		if err != nil {
			return decoded{}, fmt.Errorf("%w: map key: %w", ErrBadMessage, err)
		}
		if k == channelKey {
			start := len(body) - r.Len()
			end, _ := skipValue(b, start, 0) // checked above, as part of the whole
			out.channels = channelNames(body, b, start, end)
			if err := dec.Skip(); err != nil {
				return decoded{}, fmt.Errorf("%w: value of %q: %w", ErrBadMessage, k, err)
			}
			continue
		}
		v, err := dec.DecodeInterface()
		if err != nil {
			return decoded{}, fmt.Errorf("%w: value of %q: %w", ErrBadMessage, k, err)
		}
		if k == posKey {
			if l, ok := v.([]any); ok && len(l) == 2 {
				g, _ := l[0].(string)
				p, _ := l[1].(string)
				if pos, err := layer.ParsePosition(p); err == nil {
					out.group, out.pos = g, pos
					continue
				}
			}
			return decoded{}, fmt.Errorf("%w: malformed %q", ErrBadMessage, posKey)
		}
		out.msg[k] = normalize(v)
	}
	return out, nil
}

// channelNames returns the "__asgi_channel__" value at body[start:end] — a str, or an array whose
// str items are channel names — as substrings of body. b is body's bytes.
func channelNames(body string, b []byte, start, end int) []string {
	str := func(i int) (name string, next int, ok bool) {
		c := b[i]
		var n int
		switch {
		case c&0xe0 == 0xa0:
			n, i = int(c&0x1f), i+1
		case c == 0xd9 || c == 0xda || c == 0xdb:
			var err error
			if n, i, err = length(b, i+1, c); err != nil {
				return "", 0, false
			}
		default:
			next, err := skipValue(b, i, 1)
			return "", next, err == nil
		}
		if i+n > end {
			return "", 0, false
		}
		return body[i : i+n], i + n, true
	}
	c := b[start]
	var count, i int
	switch {
	case c&0xf0 == 0x90:
		count, i = int(c&0x0f), start+1
	case c == 0xdc || c == 0xdd:
		var err error
		if count, i, err = length(b, start+1, c); err != nil {
			return nil
		}
	default:
		if name, _, ok := str(start); ok && name != "" {
			return []string{name}
		}
		return nil
	}
	names := make([]string, 0, count)
	for ; count > 0 && i < end; count-- {
		name, next, ok := str(i)
		if !ok {
			break
		}
		if name != "" {
			names = append(names, name)
		}
		i = next
	}
	return names
}

// normalize gives decoded values the types users expect: every integer as int64 (uint64 only above
// math.MaxInt64), every float as float64; str stays string and bin stays []byte.
func normalize(v any) any {
	switch v := v.(type) {
	case int8:
		return int64(v)
	case int16:
		return int64(v)
	case int32:
		return int64(v)
	case uint8:
		return int64(v)
	case uint16:
		return int64(v)
	case uint32:
		return int64(v)
	case uint64:
		if v <= math.MaxInt64 {
			return int64(v)
		}
	case float32:
		return float64(v)
	case []any:
		for i, x := range v {
			v[i] = normalize(x)
		}
	case map[string]any:
		for k, x := range v {
			v[k] = normalize(x)
		}
	}
	return v
}

var errTruncated = errors.New("truncated msgpack")

// skipValue returns the offset just past the msgpack value at b[i:], checking that every length
// fits in b and that containers nest at most maxDepth deep.
func skipValue(b []byte, i, depth int) (int, error) {
	if depth > maxDepth {
		return 0, errors.New("msgpack nested too deeply")
	}
	if i >= len(b) {
		return 0, errTruncated
	}
	c := b[i]
	i++
	switch {
	case c <= 0x7f || c >= 0xe0: // fixint
		return i, nil
	case c&0xf0 == 0x80:
		return skipItems(b, i, 2*int(c&0x0f), depth)
	case c&0xf0 == 0x90:
		return skipItems(b, i, int(c&0x0f), depth)
	case c&0xe0 == 0xa0:
		return skipBytes(b, i, int(c&0x1f))
	}
	switch c {
	case 0xc0, 0xc2, 0xc3: // nil, false, true
		return i, nil
	case 0xcc, 0xd0:
		return skipBytes(b, i, 1)
	case 0xcd, 0xd1:
		return skipBytes(b, i, 2)
	case 0xca, 0xce, 0xd2:
		return skipBytes(b, i, 4)
	case 0xcb, 0xcf, 0xd3:
		return skipBytes(b, i, 8)
	case 0xd4, 0xd5, 0xd6, 0xd7, 0xd8: // fixext 1, 2, 4, 8, 16 (+ type byte)
		return skipBytes(b, i, 1+1<<(c-0xd4))
	}
	n, i, err := length(b, i, c)
	if err != nil {
		return 0, err
	}
	switch c {
	case 0xc4, 0xc5, 0xc6, 0xd9, 0xda, 0xdb: // bin, str
		return skipBytes(b, i, n)
	case 0xc7, 0xc8, 0xc9: // ext
		return skipBytes(b, i, n+1)
	case 0xdc, 0xdd:
		return skipItems(b, i, n, depth)
	case 0xde, 0xdf:
		if n > len(b) {
			return 0, errTruncated
		}
		return skipItems(b, i, 2*n, depth)
	}
	return 0, fmt.Errorf("invalid msgpack byte 0x%02x", c)
}

// length reads the length that follows the type byte c.
func length(b []byte, i int, c byte) (int, int, error) {
	var size int
	switch c {
	case 0xc4, 0xc7, 0xd9:
		size = 1
	case 0xc5, 0xc8, 0xda, 0xdc, 0xde:
		size = 2
	case 0xc6, 0xc9, 0xdb, 0xdd, 0xdf:
		size = 4
	default:
		return 0, 0, fmt.Errorf("invalid msgpack byte 0x%02x", c)
	}
	if len(b)-i < size {
		return 0, 0, errTruncated
	}
	var n uint64
	for _, x := range b[i : i+size] {
		n = n<<8 | uint64(x)
	}
	if n > uint64(len(b)) {
		return 0, 0, errTruncated
	}
	return int(n), i + size, nil
}

func skipBytes(b []byte, i, n int) (int, error) {
	if n < 0 || len(b)-i < n {
		return 0, errTruncated
	}
	return i + n, nil
}

func skipItems(b []byte, i, n, depth int) (int, error) {
	if n > len(b)-i { // every item takes at least one byte
		return 0, errTruncated
	}
	var err error
	for ; n > 0; n-- {
		if i, err = skipValue(b, i, depth+1); err != nil {
			return 0, err
		}
	}
	return i, nil
}
