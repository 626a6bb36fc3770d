package yproto_test

// testdata/frames.json holds frames written by the real y-protocols. Regenerate with
//
//	cd ginws/yjs/testdata/js && node gen/yproto-fixtures.mjs > ../../yproto/testdata/frames.json

import (
	"bytes"
	"errors"
	"slices"
	"strconv"
	"testing"

	"ginws.dev/ginws/yjs/internal/jstest"
	"ginws.dev/ginws/yjs/yproto"
)

type fixtures struct {
	Frames []struct {
		Name     string
		Type     uint64
		SyncType uint64
		Payload  string
		Reason   string
		Hex      string
	}
	Awareness []struct {
		Name    string
		Update  string
		Entries []struct {
			ClientID string
			Clock    uint64
			State    string
		}
	}
}

func load(t testing.TB) fixtures {
	t.Helper()
	var f fixtures
	jstest.LoadJSON(t, "testdata/frames.json", &f)
	if len(f.Frames) == 0 || len(f.Awareness) == 0 {
		t.Fatal("fixture file is empty")
	}
	return f
}

// Every frame y-protocols writes decodes to its parts, and our encoder writes the same bytes.
func TestGoldenFrames(t *testing.T) {
	t.Parallel()
	for _, f := range load(t).Frames {
		frame := jstest.Unhex(t, f.Hex)
		m, err := yproto.Decode(frame)
		if err != nil {
			t.Errorf("%s: Decode(%x): %v", f.Name, frame, err)
			continue
		}
		payload := jstest.Unhex(t, f.Payload)
		if m.Type != f.Type || m.SyncType != f.SyncType || !bytes.Equal(m.Payload, payload) || m.Reason != f.Reason {
			t.Errorf("%s: Decode = %+v, want type %d sync %d payload %x reason %q", f.Name, m, f.Type, f.SyncType, payload, f.Reason)
		}
		var enc []byte
		switch {
		case f.Type == yproto.MsgSync && f.SyncType == yproto.SyncStep1:
			enc = yproto.AppendSyncStep1(nil, payload)
		case f.Type == yproto.MsgSync && f.SyncType == yproto.SyncStep2:
			enc = yproto.AppendSyncStep2(nil, payload)
		case f.Type == yproto.MsgSync && f.SyncType == yproto.SyncUpdate:
			enc = yproto.AppendSyncUpdate(nil, payload)
		case f.Type == yproto.MsgAwareness:
			enc = yproto.AppendAwareness(nil, payload)
		case f.Type == yproto.MsgAuth:
			enc = yproto.AppendPermissionDenied(nil, f.Reason)
		case f.Type == yproto.MsgQueryAwareness:
			enc = yproto.AppendQueryAwareness(nil)
		}
		if !bytes.Equal(enc, frame) {
			t.Errorf("%s: we write %x, y-protocols wrote %x", f.Name, enc, frame)
		}
	}
}

func TestGoldenAwareness(t *testing.T) {
	t.Parallel()
	for _, c := range load(t).Awareness {
		update := jstest.Unhex(t, c.Update)
		entries, err := yproto.DecodeAwareness(update)
		if err != nil {
			t.Fatalf("%s: %v", c.Name, err)
		}
		if len(entries) != len(c.Entries) {
			t.Fatalf("%s: %d entries, want %d", c.Name, len(entries), len(c.Entries))
		}
		for i, want := range c.Entries {
			id, _ := strconv.ParseUint(want.ClientID, 10, 64)
			got := entries[i]
			if got.ClientID != id || got.Clock != want.Clock || string(got.State) != want.State {
				t.Errorf("%s[%d] = {%d %d %s}, want {%d %d %s}", c.Name, i, got.ClientID, got.Clock, got.State, id, want.Clock, want.State)
			}
			if got.IsRemoval() != (want.State == "null") {
				t.Errorf("%s[%d]: IsRemoval = %v", c.Name, i, got.IsRemoval())
			}
		}
		if enc := yproto.AppendAwarenessUpdate(nil, entries); !bytes.Equal(enc, update) {
			t.Errorf("%s: re-encoded as %x, y-protocols wrote %x", c.Name, enc, update)
		}
	}
}

func TestDecodeMalformed(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		in      []byte
		unknown bool
	}{
		{"empty", nil, false},
		{"sync without type", []byte{0}, false},
		{"sync without payload", []byte{0, 0}, false},
		{"sync payload longer than frame", []byte{0, 2, 5, 1, 2}, false},
		{"sync huge payload length", []byte{0, 2, 0xff, 0xff, 0xff, 0xff, 0x0f}, false},
		{"unknown sync type", []byte{0, 3, 0}, true},
		{"awareness without payload", []byte{1}, false},
		{"auth without sub-type", []byte{2}, false},
		{"auth unknown sub-type", []byte{2, 1, 0}, true},
		{"auth reason not utf8", []byte{2, 0, 1, 0xff}, false},
		{"unknown message type", []byte{4}, true},
		{"custom message type 100", []byte{100, 1, 2}, true},
		{"overlong type", []byte{0x80, 0x00}, false},
	}
	for _, c := range cases {
		_, err := yproto.Decode(c.in)
		if !errors.Is(err, yproto.ErrMalformed) {
			t.Errorf("%s: Decode(%x) = %v, want ErrMalformed", c.name, c.in, err)
		}
		if errors.Is(err, yproto.ErrUnknownType) != c.unknown {
			t.Errorf("%s: Decode(%x) = %v, ErrUnknownType should be %v", c.name, c.in, err, c.unknown)
		}
	}
	// An unknown top-level type still reports the type, so a server can ignore it.
	if m, _ := yproto.Decode([]byte{100}); m.Type != 100 {
		t.Errorf("unknown type reported as %d", m.Type)
	}
}

func TestDecodeIgnoresTrailingBytes(t *testing.T) {
	t.Parallel()
	frame := append(yproto.AppendSyncUpdate(nil, []byte{0, 0}), 0xde, 0xad)
	m, err := yproto.Decode(frame)
	if err != nil || m.SyncType != yproto.SyncUpdate || !bytes.Equal(m.Payload, []byte{0, 0}) {
		t.Fatalf("Decode = %+v, %v", m, err)
	}
}

func TestDecodeAwarenessMalformed(t *testing.T) {
	t.Parallel()
	cases := map[string][]byte{
		"empty":               nil,
		"count beyond input":  {0xff, 0xff, 0xff, 0xff, 0x0f, 1, 1, 0},
		"missing state":       {1, 7, 1},
		"state not json":      yproto.AppendAwarenessUpdate(nil, []yproto.AwarenessEntry{{ClientID: 1, Clock: 1, State: []byte("{oops")}}),
		"state not utf8":      {1, 7, 1, 3, '"', 0xff, '"'},
		"state truncated":     {1, 7, 1, 10, '{'},
		"second entry broken": append(yproto.AppendAwarenessUpdate(nil, []yproto.AwarenessEntry{{1, 1, []byte("{}")}})[:4:4], 2, 1),
	}
	for name, in := range cases {
		if _, err := yproto.DecodeAwareness(in); !errors.Is(err, yproto.ErrMalformed) {
			t.Errorf("%s: DecodeAwareness(%x) = %v, want ErrMalformed", name, in, err)
		}
	}
}

func TestAwarenessRoundTripBigIDs(t *testing.T) {
	t.Parallel()
	in := []yproto.AwarenessEntry{
		{ClientID: 1<<53 - 1, Clock: 3, State: []byte(`{"user":{"name":"Zoë 😀"}}`)},
		{ClientID: 1<<53 - 1, Clock: 1<<53 - 1, State: nil},
	}
	out, err := yproto.DecodeAwareness(yproto.AppendAwarenessUpdate(nil, in))
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != 2 || out[0].ClientID != in[0].ClientID || string(out[0].State) != string(in[0].State) ||
		out[1].ClientID != in[1].ClientID || out[1].Clock != in[1].Clock || !out[1].IsRemoval() {
		t.Fatalf("round trip = %+v", out)
	}
}

// Client IDs and clocks JavaScript cannot read exactly (y-protocols peers would throw on them)
// are malformed, whichever entry holds them.
func TestAwarenessBeyond2To53IsMalformed(t *testing.T) {
	t.Parallel()
	ok := yproto.AwarenessEntry{ClientID: 7, Clock: 1, State: []byte("{}")}
	for name, bad := range map[string]yproto.AwarenessEntry{
		"client 2^64-1": {ClientID: 1<<64 - 1, Clock: 1, State: []byte("{}")},
		"client 2^53":   {ClientID: 1 << 53, Clock: 1, State: []byte("{}")},
		"clock 2^64-1":  {ClientID: 1, Clock: 1<<64 - 1, State: []byte("{}")},
		"clock 2^53":    {ClientID: 1, Clock: 1 << 53, State: []byte("null")},
	} {
		in := yproto.AppendAwarenessUpdate(nil, []yproto.AwarenessEntry{ok, bad})
		if _, err := yproto.DecodeAwareness(in); !errors.Is(err, yproto.ErrMalformed) {
			t.Errorf("%s: DecodeAwareness = %v, want ErrMalformed", name, err)
		}
	}
}

func FuzzDecode(f *testing.F) {
	for _, fr := range load(f).Frames {
		f.Add(jstest.Unhex(f, fr.Hex))
	}
	f.Add([]byte{0, 3, 0})
	f.Add([]byte{2, 1})
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := yproto.Decode(b)
		if err != nil {
			if !errors.Is(err, yproto.ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
			return
		}
		if len(m.Payload) > len(b) {
			t.Fatalf("payload of %d bytes from a frame of %d", len(m.Payload), len(b))
		}
		// Whatever decodes re-encodes to a frame that decodes the same.
		var enc []byte
		switch m.Type {
		case yproto.MsgSync:
			enc = append([]byte{0, byte(m.SyncType)}, yproto.AppendAwareness(nil, m.Payload)[1:]...)
		case yproto.MsgAwareness:
			enc = yproto.AppendAwareness(nil, m.Payload)
		case yproto.MsgAuth:
			enc = yproto.AppendPermissionDenied(nil, m.Reason)
		case yproto.MsgQueryAwareness:
			enc = yproto.AppendQueryAwareness(nil)
		}
		m2, err := yproto.Decode(enc)
		if err != nil || m2.Type != m.Type || m2.SyncType != m.SyncType || !bytes.Equal(m2.Payload, m.Payload) || m2.Reason != m.Reason {
			t.Fatalf("re-encoded %+v as %x, decoded %+v, %v", m, enc, m2, err)
		}
	})
}

func FuzzAwareness(f *testing.F) {
	for _, c := range load(f).Awareness {
		f.Add(jstest.Unhex(f, c.Update))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		entries, err := yproto.DecodeAwareness(b)
		if err != nil {
			if !errors.Is(err, yproto.ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
			return
		}
		if len(entries) > len(b) {
			t.Fatalf("%d entries from %d bytes", len(entries), len(b))
		}
		// Overlong integers are refused and an empty state is not JSON, so what decodes is in
		// the one encoding AppendAwarenessUpdate writes, and re-encodes to the bytes it came from.
		enc := yproto.AppendAwarenessUpdate(nil, entries)
		if !bytes.HasPrefix(b, enc) {
			t.Fatalf("%x decoded to %+v, which re-encodes as %x", b, entries, enc)
		}
		again, err := yproto.DecodeAwareness(enc)
		if err != nil || !slices.EqualFunc(again, entries, func(a, b yproto.AwarenessEntry) bool {
			return a.ClientID == b.ClientID && a.Clock == b.Clock && bytes.Equal(a.State, b.State)
		}) {
			t.Fatalf("%+v re-encoded as %x decodes to %+v, %v", entries, enc, again, err)
		}
	})
}
