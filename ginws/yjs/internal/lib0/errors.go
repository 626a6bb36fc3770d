package lib0

import "errors"

// Decoding errors. Every error a Decoder returns is one of these.
var (
	// ErrUnexpectedEnd means a value, or a length it announced, runs past the end of the input.
	ErrUnexpectedEnd = errors.New("lib0: unexpected end of input")
	// ErrOverflow means an integer is above MaxSafeInteger (2^53-1), which JavaScript peers
	// cannot read exactly (lib0 throws "Integer out of Range" on most such values).
	ErrOverflow = errors.New("lib0: integer above 2^53-1")
	// ErrOverlong means an integer ends with a superfluous zero group, which lib0 never writes.
	ErrOverlong = errors.New("lib0: overlong integer encoding")
	// ErrInvalidUTF8 means a string is not valid UTF-8 (lib0 decodes strings with a fatal
	// TextDecoder, so JavaScript peers would throw on it).
	ErrInvalidUTF8 = errors.New("lib0: string is not valid UTF-8")
	// ErrUnknownAnyType means an "any" value starts with a tag lib0 does not define (116..127).
	ErrUnknownAnyType = errors.New("lib0: unknown any type tag")
	// ErrTooDeep means an "any" value nests arrays and objects deeper than MaxAnyDepth.
	ErrTooDeep = errors.New("lib0: any value nested too deeply")
)
