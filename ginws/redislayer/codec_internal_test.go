package redislayer

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"math"
	"slices"
	"testing"

	"ginws.dev/ginws/layer"
	"github.com/vmihailenco/msgpack/v5"
)

// pythonMember is msgpack.packb(m, use_bin_type=True) by Python's msgpack 1.0 (the serializer of
// channels_redis 4) for
//
//	{"type": "chat.message", "text": "héllo", "n": 5, "neg": -300, "big": 2**40, "f": 1.5, "ok": True,
//	 "none": None, "b": b"\x00\xff", "l": [1, "a", None], "m": {"k": [b"z"]},
//	 "__asgi_channel__": ["specific.abc!x", "specific.abc!y"]}
const pythonMember = "8ca474797065ac636861742e6d657373616765a474657874a668c3a96c6c6fa16e05a36e6567d1fed4a3626967cf0000010000000000a166cb3ff8000000000000a26f6bc3a46e6f6e65c0a162c40200ffa16c9301a161c0a16d81a16b91c4017ab05f5f617367695f6368616e6e656c5f5f92ae73706563696669632e6162632178ae73706563696669632e6162632179"

func TestDecodeChannelsRedisMember(t *testing.T) {
	t.Parallel()
	raw, err := hex.DecodeString(pythonMember)
	if err != nil {
		t.Fatal(err)
	}
	d, err := decodeMember(string(append(bytes.Repeat([]byte{0xAB}, 12), raw...)))
	if err != nil {
		t.Fatal(err)
	}
	if len(d.channels) != 2 || d.channels[0] != "specific.abc!x" || d.channels[1] != "specific.abc!y" {
		t.Fatalf("channels = %q", d.channels)
	}
	m := d.msg
	if _, ok := m[channelKey]; ok {
		t.Fatal("the routing key must be removed from the message")
	}
	checks := []struct {
		key  string
		want any
	}{
		{"type", "chat.message"}, {"text", "héllo"}, {"n", int64(5)}, {"neg", int64(-300)},
		{"big", int64(1 << 40)}, {"f", 1.5}, {"ok", true}, {"none", nil},
	}
	for _, c := range checks {
		if got, ok := m[c.key]; !ok || got != c.want {
			t.Errorf("%s = %#v (%T), want %#v (%T)", c.key, got, got, c.want, c.want)
		}
	}
	if b, ok := m.Bytes("b"); !ok || !bytes.Equal(b, []byte{0, 0xff}) {
		t.Errorf("bin = %#v, want []byte{0, 0xff}", m["b"])
	}
	if l, ok := m.Slice("l"); !ok || len(l) != 3 || l[0] != int64(1) || l[1] != "a" || l[2] != nil {
		t.Errorf("list = %#v", m["l"])
	}
	inner, ok := m["m"].(map[string]any)
	if !ok {
		t.Fatalf("nested map = %#v (%T), want map[string]any", m["m"], m["m"])
	}
	if l, ok := inner["k"].([]any); !ok || len(l) != 1 || !bytes.Equal(l[0].([]byte), []byte("z")) {
		t.Errorf("nested list of bin = %#v", inner["k"])
	}
}

// Encoding follows use_bin_type=True: str for strings, bin for []byte, compact ints, and the routing
// key last, as Python adds it to the copied dict.
func TestEncodeMember(t *testing.T) {
	t.Parallel()
	b, err := encodeBody(layer.Message{"b": []byte{1}})
	if err != nil {
		t.Fatal(err)
	}
	got := b.member([12]byte{}, "", []string{"x!1", "x!2"})
	want := "000000000000000000000000" + "82" + "a162" + "c40101" + "b05f5f617367695f6368616e6e656c5f5f" + "92" + "a378213" + "1" + "a3782132"
	if hex.EncodeToString(got) != want {
		t.Fatalf("member = %x\nwant     %s", got, want)
	}
	for _, tc := range []struct {
		v    any
		want string
	}{
		{5, "05"}, {-1, "ff"}, {300, "cd012c"}, {uint8(200), "ccc8"}, {json.Number("7"), "07"},
		{json.Number("2.5"), "cb4004000000000000"}, {"", "a0"}, {[]byte(nil), "c400"}, {nil, "c0"},
		{[]string{"a"}, "91a161"}, {float32(1), "ca3f800000"}, {true, "c3"},
	} {
		b, err := encodeBody(layer.Message{"k": tc.v})
		if err != nil {
			t.Fatalf("%#v: %v", tc.v, err)
		}
		if got := hex.EncodeToString(b.entries[2:]); got != tc.want {
			t.Errorf("encode %#v = %s, want %s", tc.v, got, tc.want)
		}
	}
}

func TestEncodeRefuses(t *testing.T) {
	t.Parallel()
	if _, err := encodeBody(layer.Message{"type": "x", channelKey: "y"}); !errors.Is(err, ErrReservedKey) {
		t.Errorf("reserved key: %v", err)
	}
	if _, err := encodeBody(layer.Message{"type": "x", "c": make(chan int)}); !errors.Is(err, ErrUnsupportedValue) {
		t.Errorf("channel value: %v", err)
	}
	cyclic := map[string]any{}
	cyclic["self"] = cyclic
	if _, err := encodeBody(layer.Message{"type": "x", "c": cyclic}); !errors.Is(err, ErrUnsupportedValue) {
		t.Errorf("cyclic map: %v", err)
	}
}

func TestEncodeDecodeRoundTrip(t *testing.T) {
	t.Parallel()
	msg := layer.Message{"type": "t", "u": uint64(math.MaxUint64), "i": math.MinInt64, "m": layer.Message{"x": []any{1.25}}}
	b, err := encodeBody(msg)
	if err != nil {
		t.Fatal(err)
	}
	d, err := decodeMember(string(b.member(randomPrefix(), "specific.a!b", nil)))
	if err != nil {
		t.Fatal(err)
	}
	if len(d.channels) != 1 || d.channels[0] != "specific.a!b" {
		t.Errorf("channels = %q", d.channels)
	}
	if d.msg["u"] != uint64(math.MaxUint64) || d.msg["i"] != int64(math.MinInt64) {
		t.Errorf("integers = %#v %#v", d.msg["u"], d.msg["i"])
	}
	if x := d.msg["m"].(map[string]any)["x"].([]any); x[0] != 1.25 {
		t.Errorf("nested = %#v", x)
	}
}

// Malformed members (from a buggy or hostile writer to Redis) are errors, never panics or huge
// allocations.
func TestDecodeMalformed(t *testing.T) {
	t.Parallel()
	p := string(make([]byte, 12))
	for _, m := range []string{
		"", "short", p, p + "\xc1", p + "\x81", p + "\x81\xa1k", p + "\xdd\xff\xff\xff\xff",
		p + "\x81\xa1k\xdd\x7f\xff\xff\xff", p + "\xdf\xff\xff\xff\xff", p + "\x81\xa1k\xc6\xff\xff\xff\xf0",
		p + "\x81\x01\x02", p + "\x92\x01\x02", p + "\x80\x00", p + string(bytes.Repeat([]byte{0x91}, 200)) + "\x01",
	} {
		if _, err := decodeMember(m); !errors.Is(err, ErrBadMessage) {
			t.Errorf("decodeMember(%x) error = %v, want ErrBadMessage", m, err)
		}
	}
}

func FuzzDecodeMember(f *testing.F) {
	raw, _ := hex.DecodeString(pythonMember)
	f.Add(append(make([]byte, 12), raw...))
	f.Add(make([]byte, 13))
	f.Add(append(make([]byte, 12), 0x81, 0xb0, '_', '_', 'a', 's', 'g', 'i', '_', 'c', 'h', 'a', 'n', 'n', 'e', 'l', '_', '_',
		0x93, 0xa3, 'a', '!', 'b', 0x01, 0xd9, 0x03, 'a', '!', 'c'))
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := decodeMember(string(b)) // must not panic
		if err != nil {
			return
		}
		// The names read in place are the str items the msgpack decoder sees in the same value.
		var m map[string]any
		if msgpack.Unmarshal(b[randomPrefixLen:], &m) != nil {
			return
		}
		var want []string
		switch v := m[channelKey].(type) {
		case string:
			if v != "" {
				want = []string{v}
			}
		case []any:
			for _, e := range v {
				if s, ok := e.(string); ok && s != "" {
					want = append(want, s)
				}
			}
		}
		if !slices.Equal(d.channels, want) {
			t.Fatalf("channels %q, want %q", d.channels, want)
		}
	})
}
