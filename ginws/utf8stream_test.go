package ginws

import (
	"testing"
	"unicode/utf8"
)

// utf8Pieces feeds pieces to a utf8Stream and returns the index of the piece that failed, or -1
// when every piece was accepted, and whether the text ended on a character boundary.
func utf8Pieces(pieces ...[]byte) (failedAt int, complete bool) {
	var u utf8Stream
	for i, p := range pieces {
		if !u.write(p) {
			return i, false
		}
	}
	return -1, u.complete()
}

func TestUTF8StreamAgreesWithValid(t *testing.T) {
	t.Parallel()
	texts := [][]byte{
		[]byte(""), []byte("hello"), []byte("κόσμε"), []byte("\u20ac\U0001F600 end"),
		{0xed, 0x9f, 0xbf}, {0xee, 0x80, 0x80}, {0xef, 0xbf, 0xbd}, {0xf4, 0x8f, 0xbf, 0xbf},
		// invalid: overlong, surrogates, beyond U+10FFFF, stray continuation, truncated, bad leads
		{0xc0, 0xaf}, {0xe0, 0x80, 0xaf}, {0xf0, 0x80, 0x80, 0xaf}, {0xed, 0xa0, 0x80},
		{0xf4, 0x90, 0x80, 0x80}, {0x80}, {0xbf, 0x41}, {0xe2, 0x82}, {0xf5}, {0xff}, {0xfe, 0xfe},
		[]byte("abc\xce"), []byte("\xce\xbaa\xe1\xbd\xb9\x80"),
	}
	for _, text := range texts {
		want := utf8.Valid(text)
		// every way of cutting the text in up to three pieces
		for i := 0; i <= len(text); i++ {
			for j := i; j <= len(text); j++ {
				failedAt, complete := utf8Pieces(text[:i], text[i:j], text[j:])
				if got := failedAt < 0 && complete; got != want {
					t.Fatalf("%x cut at %d,%d: valid %v, want %v", text, i, j, got, want)
				}
			}
		}
	}
}

// A piece that makes the text invalid fails at once, not when the message ends (Autobahn 6.4.x).
func TestUTF8StreamFailsFast(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		pieces [][]byte
		fail   int // index of the piece that must fail
	}{
		{"code point beyond U+10FFFF in the middle piece", [][]byte{[]byte("κόσμε"), {0xf4, 0x90, 0x80, 0x80}, []byte("edited")}, 1},
		{"first continuation byte already impossible", [][]byte{[]byte("κόσμε\xf4"), {0x90}, {0x80, 0x80}, []byte("edited")}, 1},
		{"surrogate known from two bytes", [][]byte{{0xed}, {0xa0}, {0x80}}, 1},
		{"lead byte that starts nothing", [][]byte{[]byte("ok"), {0xf8}, []byte("more")}, 1},
		{"overlong two-byte form", [][]byte{[]byte("a"), {0xc1, 0xbf}}, 1},
	}
	for _, tc := range cases {
		if failedAt, _ := utf8Pieces(tc.pieces...); failedAt != tc.fail {
			t.Errorf("%s: failed at piece %d, want %d", tc.name, failedAt, tc.fail)
		}
	}
}

// FuzzUTF8Stream: cut anywhere, the stream agrees with utf8.Valid, and it never refuses a prefix of
// valid text.
func FuzzUTF8Stream(f *testing.F) {
	f.Add([]byte("κόσμε\xf4\x90\x80\x80edited"), uint8(3), uint8(9))
	f.Add([]byte("\xf0\x9f\x98\x80"), uint8(1), uint8(2))
	f.Add([]byte("plain ascii"), uint8(0), uint8(0))
	f.Fuzz(func(t *testing.T, text []byte, a, b uint8) {
		i := min(int(a), len(text))
		j := min(i+int(b), len(text))
		failedAt, complete := utf8Pieces(text[:i], text[i:j], text[j:])
		valid := utf8.Valid(text)
		if got := failedAt < 0 && complete; got != valid {
			t.Fatalf("%x cut at %d,%d: valid %v, want %v", text, i, j, got, valid)
		}
		if failedAt >= 0 {
			// It must not refuse before the first invalid sequence starts: the pieces before the
			// failing one, and the failing one up to that sequence, are valid text.
			pieceEnd := []int{i, j, len(text)}[failedAt]
			if firstInvalid(text) >= pieceEnd {
				t.Fatalf("%x cut at %d,%d: refused piece %d, which ends before the first invalid byte %d", text, i, j, failedAt, firstInvalid(text))
			}
		}
	})
}

// firstInvalid returns where the first invalid (or, at the end, unfinished) sequence of text starts.
func firstInvalid(text []byte) int {
	for p := 0; p < len(text); {
		r, size := utf8.DecodeRune(text[p:])
		if r == utf8.RuneError && size == 1 {
			return p
		}
		p += size
	}
	return len(text)
}
