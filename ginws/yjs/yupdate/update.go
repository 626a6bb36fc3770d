// Package yupdate works on Yjs document updates in the v1 encoding (the one y-websocket sends)
// without a CRDT runtime: it validates, merges and diffs updates and computes state vectors, the
// operations a server needs to keep a document as one merged update and to answer a client's
// sync step 1 with exactly what it lacks.
//
// An update lists structs per client (Items with content, GC ranges of garbage-collected
// content, Skip ranges marking gaps), then a delete set. Clocks count content units: UTF-16 code
// units for text, elements for arrays, 1 for everything else. Client IDs and clocks are uint64
// but every integer read is at most 2^53-1 (JavaScript's Number.MAX_SAFE_INTEGER), and so is
// every struct's and deleted range's end clock: lib0 in JavaScript throws on larger integers, so
// an update holding one would make the document unreadable for every Yjs peer it reached. Such
// input is malformed for every function here.
//
// The functions follow Yjs 13.6 (Y.mergeUpdates, Y.encodeStateVectorFromUpdate, Y.diffUpdate)
// and produce the same bytes for updates made by Yjs. Content values (JSON, lib0 "any", embeds,
// formats) are validated and copied verbatim where Yjs decodes and re-encodes them; the two agree
// for everything Yjs writes.
//
// Validation is strict so that a server can refuse poison before it reaches a room: malformed
// varints, lengths beyond the input, invalid UTF-8, content that is not JSON where Yjs will
// JSON.parse it, unknown content or type references, zero-length structs, integers and clocks
// above 2^53-1, client sections not in descending client order (or listing a client twice, which
// Yjs reads differently in Y.applyUpdate and Y.mergeUpdates), an item whose origin or right
// origin is a clock of its own client at or after it (Y.applyUpdate throws on it) and bytes
// after the delete set are all errors wrapping ErrMalformed.
//
// Concurrency: all functions are pure and safe for concurrent use. Outputs never alias inputs.
package yupdate

import "errors"

// ErrMalformed is wrapped by every error this package returns.
var ErrMalformed = errors.New("yupdate: malformed update")

// Validate parses the whole update and reports the first problem, wrapping ErrMalformed.
// It holds one struct in memory at a time and allocates nothing for valid input.
func Validate(update []byte) error {
	var r reader
	r.reset(update)
	for r.next() {
	}
	_, _, err := r.finish(false)
	return err
}

// IsEmpty reports whether update holds no structs and no deletions, like the {0, 0} a Yjs
// document without changes encodes to. A malformed update is not empty.
func IsEmpty(update []byte) bool {
	if len(update) == 2 && update[0] == 0 && update[1] == 0 {
		return true
	}
	var r reader
	r.reset(update)
	if r.next() {
		return false
	}
	ds, _, err := r.finish(true)
	return err == nil && ds.empty()
}
