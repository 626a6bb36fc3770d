package djangotest

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"ginws.dev/ginws/layer"
)

// Typed JSON is how the interop consumers (the Django one in djangosite/project/consumers.py and
// the Go one in this package) show layer messages to a test, and how a test hands them messages to
// send. It keeps every distinction a channel layer message can carry:
//
//   - bytes travel as {"__bytes__": "<standard base64>"};
//   - a float is always written with a '.' or an exponent (2.0, not 2), as Python writes floats, so
//     an int and a float stay apart; NaN and infinities are refused;
//   - strings, bools, null, lists and maps are plain JSON.
//
// UnmarshalTyped returns int64 (uint64 above math.MaxInt64), float64, string, bool, nil, []byte,
// []any and map[string]any, so two values that went through it compare with reflect.DeepEqual.

// bytesKey marks a byte string in typed JSON.
const bytesKey = "__bytes__"

// ErrNotTyped is wrapped by the errors of MarshalTyped for values typed JSON cannot carry.
var ErrNotTyped = errors.New("djangotest: value cannot be carried by typed JSON")

// MarshalTyped encodes v as typed JSON. v may hold nil, bool, string, any Go integer or float,
// []byte, []any, []string, map[string]any, layer.Message and json.Number.
func MarshalTyped(v any) ([]byte, error) {
	var b bytes.Buffer
	if err := appendTyped(&b, v, 0); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

const maxDepth = 64

func appendTyped(b *bytes.Buffer, v any, depth int) error {
	if depth > maxDepth {
		return fmt.Errorf("%w: nested more than %d levels", ErrNotTyped, maxDepth)
	}
	switch v := v.(type) {
	case nil:
		b.WriteString("null")
	case bool:
		b.WriteString(strconv.FormatBool(v))
	case string:
		s, err := json.Marshal(v)
		if err != nil {
			return err
		}
		b.Write(s)
	case int, int8, int16, int32, int64:
		b.WriteString(strconv.FormatInt(reflect.ValueOf(v).Int(), 10))
	case uint, uint8, uint16, uint32, uint64:
		b.WriteString(strconv.FormatUint(reflect.ValueOf(v).Uint(), 10))
	case float32:
		return appendFloat(b, float64(v), 32)
	case float64:
		return appendFloat(b, v, 64)
	case json.Number:
		b.WriteString(v.String())
	case []byte:
		b.WriteString(`{"` + bytesKey + `":"`)
		b.WriteString(base64.StdEncoding.EncodeToString(v))
		b.WriteString(`"}`)
	case []string:
		b.WriteByte('[')
		for i, s := range v {
			if i > 0 {
				b.WriteByte(',')
			}
			if err := appendTyped(b, s, depth+1); err != nil {
				return err
			}
		}
		b.WriteByte(']')
	case []any:
		b.WriteByte('[') // a nil list is an empty one: msgpack decoders differ on that
		for i, e := range v {
			if i > 0 {
				b.WriteByte(',')
			}
			if err := appendTyped(b, e, depth+1); err != nil {
				return err
			}
		}
		b.WriteByte(']')
	case layer.Message:
		return appendMap(b, v, depth)
	case map[string]any:
		return appendMap(b, v, depth)
	default:
		return fmt.Errorf("%w: %T", ErrNotTyped, v)
	}
	return nil
}

func appendFloat(b *bytes.Buffer, f float64, bits int) error {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return fmt.Errorf("%w: %v (JSON has no such number)", ErrNotTyped, f)
	}
	s := strconv.FormatFloat(f, 'g', -1, bits)
	if !strings.ContainsAny(s, ".eE") {
		s += ".0"
	}
	b.WriteString(s)
	return nil
}

func appendMap(b *bytes.Buffer, m map[string]any, depth int) error {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys) // deterministic output
	b.WriteByte('{')
	for i, k := range keys {
		if i > 0 {
			b.WriteByte(',')
		}
		if err := appendTyped(b, k, depth+1); err != nil {
			return err
		}
		b.WriteByte(':')
		if err := appendTyped(b, m[k], depth+1); err != nil {
			return err
		}
	}
	b.WriteByte('}')
	return nil
}

// UnmarshalTyped decodes typed JSON.
func UnmarshalTyped(data []byte) (any, error) {
	d := json.NewDecoder(bytes.NewReader(data))
	d.UseNumber()
	var raw any
	if err := d.Decode(&raw); err != nil {
		return nil, fmt.Errorf("djangotest: typed JSON: %w", err)
	}
	if d.More() {
		return nil, errors.New("djangotest: typed JSON: data after the value")
	}
	return fromRaw(raw)
}

// fromRaw turns what encoding/json decoded (with UseNumber) into typed values.
func fromRaw(v any) (any, error) {
	switch v := v.(type) {
	case json.Number:
		s := v.String()
		if strings.ContainsAny(s, ".eE") {
			return strconv.ParseFloat(s, 64)
		}
		if i, err := strconv.ParseInt(s, 10, 64); err == nil {
			return i, nil
		}
		if u, err := strconv.ParseUint(s, 10, 64); err == nil {
			return u, nil
		}
		return nil, fmt.Errorf("djangotest: typed JSON: integer %s does not fit in 64 bits", s)
	case []any:
		out := make([]any, len(v))
		for i, e := range v {
			x, err := fromRaw(e)
			if err != nil {
				return nil, err
			}
			out[i] = x
		}
		return out, nil
	case map[string]any:
		if s, ok := v[bytesKey].(string); ok && len(v) == 1 {
			b, err := base64.StdEncoding.DecodeString(s)
			if err != nil {
				return nil, fmt.Errorf("djangotest: typed JSON: bad %s: %w", bytesKey, err)
			}
			return b, nil
		}
		out := make(map[string]any, len(v))
		for k, e := range v {
			x, err := fromRaw(e)
			if err != nil {
				return nil, err
			}
			out[k] = x
		}
		return out, nil
	}
	return v, nil // string, bool, nil
}

// Normalize returns v as UnmarshalTyped would return it after MarshalTyped: the form in which the
// interop consumers report messages, for comparing what was sent with what arrived.
func Normalize(v any) (any, error) {
	b, err := MarshalTyped(v)
	if err != nil {
		return nil, err
	}
	return UnmarshalTyped(b)
}
