package ginws

import (
	"bytes"
	"encoding/binary"
	"testing"
	"unicode/utf8"
)

// clientFrame builds a masked client frame.
func clientFrame(fin bool, op byte, payload []byte, key [4]byte) []byte {
	b0 := op
	if fin {
		b0 |= 0x80
	}
	var out []byte
	switch n := len(payload); {
	case n < 126:
		out = []byte{b0, 0x80 | byte(n)}
	case n <= 0xffff:
		out = binary.BigEndian.AppendUint16([]byte{b0, 0x80 | 126}, uint16(n))
	default:
		out = binary.BigEndian.AppendUint64([]byte{b0, 0x80 | 127}, uint64(n))
	}
	out = append(out, key[:]...)
	masked := append([]byte(nil), payload...)
	maskBytes(key, masked)
	return append(out, masked...)
}

// parseAll feeds b to a parser the way the reader does, in chunks of step bytes, and returns the
// events, or the close error.
func parseAll(p *frameParser, b []byte, step int) ([]frameEvent, *CloseError) {
	var evs []frameEvent
	var buf []byte
	for len(b) > 0 || len(buf) > 0 {
		if len(buf) == 0 {
			n := min(step, len(b))
			buf = append(buf, b[:n]...)
			b = b[n:]
		}
		ev, used, need, err := p.feed(buf)
		if err != nil {
			return evs, err
		}
		if ev.kind != evNone {
			ev.data = append([]byte(nil), ev.data...)
			evs = append(evs, ev)
		}
		buf = buf[used:]
		if need > 0 {
			if len(b) == 0 {
				return evs, nil // incomplete at the end of input
			}
			n := min(step, len(b))
			buf = append(buf, b[:n]...)
			b = b[n:]
		}
	}
	return evs, nil
}

func TestFrameParser(t *testing.T) {
	t.Parallel()
	key := [4]byte{0x37, 0xfa, 0x21, 0x3d}
	big := bytes.Repeat([]byte("x"), 70000)
	var stream []byte
	stream = append(stream, clientFrame(true, opText, []byte("Hello"), key)...)
	stream = append(stream, clientFrame(false, opText, []byte("Hel"), key)...)
	stream = append(stream, clientFrame(true, opPing, []byte("mid-message ping"), key)...)
	stream = append(stream, clientFrame(true, 0, []byte("lo"), key)...)
	stream = append(stream, clientFrame(true, opBinary, []byte{0, 1, 2}, key)...)
	stream = append(stream, clientFrame(true, opBinary, big, key)...)
	stream = append(stream, clientFrame(true, opText, []byte{}, key)...)
	stream = append(stream, clientFrame(true, opPong, nil, key)...)
	stream = append(stream, clientFrame(true, opClose, binary.BigEndian.AppendUint16(nil, 4001), key)...)
	for _, step := range []int{1, 3, 7, 100, 1 << 20} {
		p := &frameParser{limit: 1 << 20}
		evs, err := parseAll(p, stream, step)
		if err != nil {
			t.Fatalf("step %d: %v", step, err)
		}
		want := []struct {
			kind eventKind
			data string
		}{{evMessage, "Hello"}, {evPing, "mid-message ping"}, {evMessage, "Hello"}, {evMessage, "\x00\x01\x02"}, {evMessage, string(big)}, {evMessage, ""}, {evPong, ""}, {evClose, ""}}
		if len(evs) != len(want) {
			t.Fatalf("step %d: %d events, want %d", step, len(evs), len(want))
		}
		for i, w := range want {
			if evs[i].kind != w.kind || string(evs[i].data) != w.data {
				t.Fatalf("step %d event %d: kind %d data %.20q, want %d %.20q", step, i, evs[i].kind, evs[i].data, w.kind, w.data)
			}
		}
		if !evs[3].binary || evs[0].binary || evs[7].code != 4001 {
			t.Fatalf("step %d: flags %+v", step, evs)
		}
	}
}

func TestFrameParserRefusals(t *testing.T) {
	t.Parallel()
	key := [4]byte{1, 2, 3, 4}
	unmasked := clientFrame(true, opText, []byte("hi"), key)
	unmasked[1] &^= 0x80
	unmasked = append(unmasked[:2], []byte("hi")...)
	rsv := clientFrame(true, opText, []byte("hi"), key)
	rsv[0] |= 0x40
	nonMinimal := append([]byte{0x81, 0x80 | 126, 0, 5}, key[:]...)
	nonMinimal = append(nonMinimal, 1, 2, 3, 4, 5)
	cases := map[string]struct {
		in   []byte
		code int
	}{
		"unmasked":               {unmasked, CloseProtocolError},
		"reserved bits":          {rsv, CloseProtocolError},
		"unknown opcode":         {clientFrame(true, 3, nil, key), CloseProtocolError},
		"continuation first":     {clientFrame(true, 0, []byte("x"), key), CloseProtocolError},
		"fragmented ping":        {clientFrame(false, opPing, nil, key), CloseProtocolError},
		"long ping":              {clientFrame(true, opPing, bytes.Repeat([]byte("p"), 126), key), CloseProtocolError},
		"text in a message":      {append(clientFrame(false, opText, []byte("a"), key), clientFrame(true, opText, []byte("b"), key)...), CloseProtocolError},
		"invalid UTF-8":          {clientFrame(true, opText, []byte{0xff, 0xfe}, key), CloseInvalidPayload},
		"UTF-8 split across":     {append(clientFrame(false, opText, []byte{0xe2, 0x82}, key), clientFrame(true, 0, []byte{0x41}, key)...), CloseInvalidPayload},
		"over limit":             {clientFrame(true, opBinary, make([]byte, 101), key), CloseMessageTooBig},
		"fragments over limit":   {append(clientFrame(false, opBinary, make([]byte, 60), key), clientFrame(true, 0, make([]byte, 60), key)...), CloseMessageTooBig},
		"one-byte close":         {clientFrame(true, opClose, []byte{3}, key), CloseProtocolError},
		"close code 1005":        {clientFrame(true, opClose, binary.BigEndian.AppendUint16(nil, 1005), key), CloseProtocolError},
		"close code 999":         {clientFrame(true, opClose, binary.BigEndian.AppendUint16(nil, 999), key), CloseProtocolError},
		"close reason bad UTF-8": {clientFrame(true, opClose, append(binary.BigEndian.AppendUint16(nil, 1000), 0xff), key), CloseInvalidPayload},
		"non-minimal length":     {nonMinimal, CloseProtocolError},
		"huge length":            {append([]byte{0x82, 0xff, 0x80, 0, 0, 0, 0, 0, 0, 0}, key[:]...), CloseProtocolError},
	}
	for name, tc := range cases {
		p := &frameParser{limit: 100}
		_, err := parseAll(p, tc.in, 5)
		if err == nil || err.Code != tc.code {
			t.Errorf("%s: %v, want close %d", name, err, tc.code)
		}
	}
	// The limit check comes before the payload arrives: a client cannot make the server buffer it.
	p := &frameParser{limit: 100}
	hdr := append([]byte{0x82, 0x80 | 127, 0, 0, 0, 0, 0x10, 0, 0, 0}, key[:]...)
	if _, _, _, err := p.feed(hdr); err == nil || err.Code != CloseMessageTooBig {
		t.Fatalf("a 256 MiB header must be refused at once: %v", err)
	}
}

func TestMaskBytes(t *testing.T) {
	t.Parallel()
	key := [4]byte{0xde, 0xad, 0xbe, 0xef}
	for n := 0; n < 40; n++ {
		b := bytes.Repeat([]byte{0x5a}, n)
		want := append([]byte(nil), b...)
		for i := range want {
			want[i] ^= key[i%4]
		}
		maskBytes(key, b)
		if !bytes.Equal(b, want) {
			t.Fatalf("n=%d: %x, want %x", n, b, want)
		}
	}
}

// FuzzFrameParser feeds arbitrary bytes, in arbitrary chunks, to the parser the way the reader
// does — through feed, and through space/wrote for the payload of large frames — and after an error
// goes on in skip mode, as the reader does while it waits for the client's close: it must never
// panic, never return a message over the limit or text that is not UTF-8, and always either consume
// input, ask for more, or refuse.
func FuzzFrameParser(f *testing.F) {
	key := [4]byte{9, 8, 7, 6}
	f.Add(clientFrame(true, opText, []byte("hello"), key), uint8(3))
	f.Add(append(clientFrame(false, opBinary, []byte{1, 2}, key), clientFrame(true, 0, []byte{3}, key)...), uint8(1))
	f.Add(clientFrame(true, opClose, binary.BigEndian.AppendUint16(nil, 1000), key), uint8(2))
	f.Add(clientFrame(true, opPing, []byte("p"), key), uint8(9))
	f.Add([]byte{0x82, 0xff, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 1, 2, 3, 4}, uint8(4))
	f.Add(append(clientFrame(true, opText, []byte{0xce, 0xba, 0xff}, key), clientFrame(true, opClose, nil, key)...), uint8(2))
	f.Add(clientFrame(true, opBinary, bytes.Repeat([]byte{1}, 3000), key), uint8(200))
	// Odd steps negotiate permessage-deflate: RSV1 then marks compressed messages, which are
	// inflated as the reader does.
	z := deflateForTest(f, []byte(`{"type":"chat.message","text":"hello hello hello"}`))
	rsv := func(b []byte) []byte { b[0] |= rsv1; return b }
	f.Add(rsv(clientFrame(true, opText, z, key)), uint8(5))
	f.Add(append(rsv(clientFrame(false, opText, z[:4], key)), clientFrame(true, 0, z[4:], key)...), uint8(3))
	f.Add(rsv(clientFrame(true, opBinary, bombForTest(f, 1<<20), key)), uint8(255))
	f.Fuzz(func(t *testing.T, data []byte, step uint8) {
		const limit = 1 << 12
		p := &frameParser{limit: limit, deflate: step&1 == 1}
		chunk := int(step) + 1
		var buf []byte
		for steps := 0; len(data) > 0 || len(buf) > 0; steps++ {
			if steps > 1<<16 {
				t.Fatal("no progress")
			}
			if len(buf) == 0 {
				if dst := p.space(); dst != nil && len(dst) > 0 && chunk > 64 {
					n := copy(dst, data[:min(chunk, len(data))])
					data = data[n:]
					ev, err := p.wrote(n)
					check(t, ev, limit)
					if err != nil {
						p.skipFrom(p.inFrame)
					}
					continue
				}
				n := min(chunk, len(data))
				buf, data = append(buf, data[:n]...), data[n:]
			}
			ev, used, need, err := p.feed(buf)
			check(t, ev, limit)
			buf = buf[used:]
			switch {
			case err != nil && p.skip:
				return // the stream cannot be followed even in skip mode
			case err != nil:
				p.skipFrom(p.inFrame)
			case need > 0:
				if len(data) == 0 {
					return
				}
				n := min(chunk, len(data))
				buf, data = append(buf, data[:n]...), data[n:]
			case used == 0 && ev.kind == evNone:
				t.Fatal("feed neither used bytes, nor asked for more, nor failed")
			}
			if len(p.msg) > limit && !(p.zmsg && len(p.msg) <= limit+limit>>4+1024) {
				t.Fatalf("partial message of %d bytes over the limit", len(p.msg))
			}
		}
	})
}

func check(t *testing.T, ev frameEvent, limit int) {
	t.Helper()
	if ev.kind != evMessage {
		return
	}
	if ev.deflated {
		if len(ev.data) > limit+limit>>4+1024 {
			t.Fatalf("compressed message of %d bytes over the limit", len(ev.data))
		}
		data, err := inflateMessage(&ctxWindow{}, ev, int64(limit))
		if err != nil {
			return
		}
		ev.data = data
	}
	if len(ev.data) > limit {
		t.Fatalf("message of %d bytes over the limit", len(ev.data))
	}
	if !ev.binary && !utf8.Valid(ev.data) {
		t.Fatalf("text message that is not UTF-8: %x", ev.data)
	}
}

// Invalid text fails at the first bad piece, in a fragment or in the middle of a frame, not when the
// message is whole (Autobahn 6.4.1-6.4.4).
func TestFrameParserUTF8FailsFast(t *testing.T) {
	t.Parallel()
	key := [4]byte{0x11, 0x22, 0x33, 0x44}
	part1, part2, part3 := []byte("κόσμε"), []byte{0xf4, 0x90, 0x80, 0x80}, []byte("edited")

	// Three fragments: the second fails, before the third arrives.
	p := &frameParser{limit: 1 << 20}
	if _, err := parseAll(p, append(clientFrame(false, opText, part1, key), clientFrame(false, 0, part2, key)...), 1<<10); err == nil || err.Code != CloseInvalidPayload {
		t.Fatalf("fragments: %v, want 1007 before the last fragment", err)
	}

	// One frame, in chops: the chop holding the bad bytes fails, before the frame's end.
	frame := clientFrame(true, opText, append(append(append([]byte(nil), part1...), part2...), part3...), key)
	cut := len(frame) - len(part3)
	p = &frameParser{limit: 1 << 20}
	if _, err := parseAll(p, frame[:cut], 1<<10); err == nil || err.Code != CloseInvalidPayload {
		t.Fatalf("chops: %v, want 1007 before the frame's last chop", err)
	}

	// Valid text split inside a character, across fragments and chops, is accepted.
	text := []byte("a€b😀c")
	var stream []byte
	stream = append(stream, clientFrame(false, opText, text[:2], key)...)
	stream = append(stream, clientFrame(false, 0, text[2:6], key)...)
	stream = append(stream, clientFrame(true, 0, text[6:], key)...)
	for step := 1; step < 8; step++ {
		p = &frameParser{limit: 1 << 20}
		evs, err := parseAll(p, stream, step)
		if err != nil || len(evs) != 1 || string(evs[0].data) != string(text) {
			t.Fatalf("step %d: %v %+v", step, err, evs)
		}
	}
}

// After a protocol error, skip mode steps over frames of any kind and size — including the rest
// of the refused one — and finds the client's close frame.
func TestFrameParserSkipsToClose(t *testing.T) {
	t.Parallel()
	key := [4]byte{5, 6, 7, 8}
	closeFrame := clientFrame(true, opClose, binary.BigEndian.AppendUint16(nil, 1002), key)
	tooBig := clientFrame(true, opBinary, bytes.Repeat([]byte{7}, 5000), key)
	rsv := clientFrame(true, opText, []byte("x"), key)
	rsv[0] |= 0x20
	unmasked := []byte{0x81, 3, 'a', 'b', 'c'}
	for _, step := range []int{1, 13, 4096} {
		// A header error: the refused frame is skipped from its start.
		p := &frameParser{limit: 100}
		stream := append(append(append(append([]byte(nil), tooBig...), rsv...), unmasked...), closeFrame...)
		ev, used, _, err := p.feed(stream)
		if err == nil || err.Code != CloseMessageTooBig || used != 0 {
			t.Fatalf("want 1009 before any byte is used: %v, used %d", err, used)
		}
		p.skipFrom(p.inFrame)
		evs, err := parseAll(p, stream, step)
		if err != nil || len(evs) != 1 || evs[0].kind != evClose || evs[0].code != 1002 {
			t.Fatalf("step %d: %v %+v (%v)", step, err, evs, ev)
		}

		// A close frame too long to be valid (Autobahn 7.3.6) is still the client's close.
		p = &frameParser{limit: 100}
		longClose := frame126Close(key)
		_, used, _, err = p.feed(longClose)
		if err == nil || used != 0 {
			t.Fatalf("a 126-byte close frame must be refused: %v", err)
		}
		p.skipFrom(p.inFrame)
		if evs, err := parseAll(p, longClose, step); err != nil || len(evs) != 1 || evs[0].kind != evClose {
			t.Fatalf("step %d: the long close frame: %v %+v", step, err, evs)
		}

		// A payload error: the rest of the frame is skipped.
		p = &frameParser{limit: 1 << 20}
		bad := clientFrame(true, opText, append([]byte{0xff}, bytes.Repeat([]byte("z"), 3000)...), key)
		_, used, _, err = p.feed(bad[:20])
		if err == nil || err.Code != CloseInvalidPayload {
			t.Fatalf("want 1007: %v", err)
		}
		p.skipFrom(p.inFrame)
		evs, err = parseAll(p, append(append([]byte(nil), bad[used:]...), closeFrame...), step)
		if err != nil || len(evs) != 1 || evs[0].kind != evClose {
			t.Fatalf("step %d: %v %+v", step, err, evs)
		}
	}
}

// frame126Close is a close frame with a 126-byte payload: over the 125 bytes a control frame may
// carry.
func frame126Close(key [4]byte) []byte {
	payload := append(binary.BigEndian.AppendUint16(nil, 1000), bytes.Repeat([]byte("*"), 124)...)
	return clientFrame(true, opClose, payload, key)
}
