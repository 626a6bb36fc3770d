package ginws

import "unicode/utf8"

// utf8Stream validates UTF-8 that arrives in pieces — the fragments of a text message, and the
// partial reads of each fragment — and fails on the first piece that makes the text invalid, not
// when the message ends (RFC 6455 §8.1: an endpoint should fail the connection as soon as it sees
// invalid data). It keeps at most the 3 bytes of an unfinished sequence.
type utf8Stream struct {
	pend [utf8.UTFMax]byte // the unfinished sequence at the end of the text so far
	n    int               // len of pend in use
}

// write checks b, the next bytes of the text. It returns false when the text can no longer be
// valid UTF-8: b holds an invalid sequence, or an unfinished sequence that no byte could complete.
func (u *utf8Stream) write(b []byte) bool {
	if u.n > 0 {
		want := seqLen(u.pend[0])
		take := min(want-u.n, len(b))
		u.n += copy(u.pend[u.n:], b[:take])
		b = b[take:]
		if !validPrefix(u.pend[:u.n]) {
			return false
		}
		if u.n < want {
			return true // b is used up and the sequence is still unfinished
		}
		u.n = 0
	}
	// Split off an unfinished sequence at the end: a lead byte within the last three bytes whose
	// sequence is longer than what follows it.
	cut := len(b)
	for i := len(b) - 1; i >= 0 && i >= len(b)-(utf8.UTFMax-1); i-- {
		if b[i]&0xc0 != 0x80 { // not a continuation byte
			if len(b)-i < seqLen(b[i]) {
				cut = i
			}
			break
		}
	}
	if !utf8.Valid(b[:cut]) {
		return false
	}
	u.n = copy(u.pend[:], b[cut:])
	return u.n == 0 || validPrefix(u.pend[:u.n])
}

// complete reports whether the text written so far ends on a character boundary; it resets the
// stream for the next message.
func (u *utf8Stream) complete() bool {
	ok := u.n == 0
	u.n = 0
	return ok
}

// seqLen is the length of the sequence lead byte b starts; 1 for ASCII and for bytes that cannot
// start a sequence (the validators refuse those).
func seqLen(b byte) int {
	switch {
	case b >= 0xc2 && b <= 0xdf:
		return 2
	case b >= 0xe0 && b <= 0xef:
		return 3
	case b >= 0xf0 && b <= 0xf4:
		return 4
	}
	return 1
}

// validPrefix reports whether p, at most one sequence long and starting with a lead byte, is the
// start (or the whole) of a valid UTF-8 sequence: no overlong form, no surrogate, nothing beyond
// U+10FFFF (the ranges of RFC 3629 §4).
func validPrefix(p []byte) bool {
	n := seqLen(p[0])
	if n == 1 || len(p) > n {
		return len(p) == 1 && p[0] < utf8.RuneSelf
	}
	for i := 1; i < len(p); i++ {
		lo, hi := byte(0x80), byte(0xbf)
		if i == 1 {
			switch p[0] {
			case 0xe0:
				lo = 0xa0
			case 0xed:
				hi = 0x9f
			case 0xf0:
				lo = 0x90
			case 0xf4:
				hi = 0x8f
			}
		}
		if p[i] < lo || p[i] > hi {
			return false
		}
	}
	return true
}
