// Package ystore is where a yjs.Server keeps its rooms' documents: the Store contract (an
// append-only log per room with a compare-and-swap compaction) and Memory, the in-process store.
// ginws/yjs/redisstore keeps them in Redis. It depends on nothing of the web stack.
package ystore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
)

// Store persists each room's document as a log of Yjs v1 updates. The Server appends the updates
// it applies (collected for Config.SaveDelay and merged into one) and, when a room's log holds
// more than Config.CompactAfter entries, replaces the entries it read by their merge.
//
// Several processes may append to and compact one room's log at the same time. The contract that
// keeps every update: Append only ever adds at the end, and Compact is a compare-and-swap — it
// replaces the first len(old) entries only if they are still, byte for byte, the entries old
// (what the caller loaded and merged), and otherwise changes nothing and returns ErrConflict. So
// an entry appended meanwhile is kept, and of two processes compacting the same entries, the
// second fails instead of deleting what followed the first one's merge. Implementations must be
// safe for concurrent use; every method takes a context and returns its error once it is done.
// The package redisstore keeps the log in Redis for apps that run several processes.
type Store interface {
	// Load returns the room's log, oldest first (nil for a room never stored). The caller may
	// keep the slices and must not modify them.
	Load(ctx context.Context, room string) ([][]byte, error)
	// Append adds update to the end of the room's log and returns the log's length after it.
	Append(ctx context.Context, room string, update []byte) (int, error)
	// Compact replaces the first len(old) entries of the room's log by merged (their merge),
	// keeping the entries after them, if those first entries are still equal to old; else it
	// changes nothing and returns an error wrapping ErrConflict.
	Compact(ctx context.Context, room string, old [][]byte, merged []byte) error
}

// ErrConflict is returned by Store.Compact when the log no longer starts with the entries the
// caller read (another process compacted it first). Nothing was changed; the caller may load the
// log again and retry.
var ErrConflict = errors.New("ystore: the stored log changed since it was read")

// Memory keeps the logs in memory: documents outlive their rooms, not the process. It is
// safe for concurrent use.
type Memory struct {
	mu   sync.Mutex
	logs map[string][][]byte
}

var _ Store = (*Memory)(nil)

// NewMemory returns an empty Memory.
func NewMemory() *Memory { return &Memory{logs: make(map[string][][]byte)} }

// Load returns a copy of the room's log.
func (m *Memory) Load(ctx context.Context, room string) ([][]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	log := m.logs[room]
	if len(log) == 0 {
		return nil, nil
	}
	return append([][]byte(nil), log...), nil // entries are never modified in place
}

// Append adds a copy of update to the room's log.
func (m *Memory) Append(ctx context.Context, room string, update []byte) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	u := append([]byte(nil), update...)
	m.mu.Lock()
	defer m.mu.Unlock()
	m.logs[room] = append(m.logs[room], u)
	return len(m.logs[room]), nil
}

// Compact replaces the first len(old) entries of the room's log by merged, if they are still
// equal to old.
func (m *Memory) Compact(ctx context.Context, room string, old [][]byte, merged []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	u := append([]byte(nil), merged...)
	m.mu.Lock()
	defer m.mu.Unlock()
	log := m.logs[room]
	n := len(old)
	if n > len(log) {
		return fmt.Errorf("%w: compact %d entries of a log of %d", ErrConflict, n, len(log))
	}
	for i, e := range old {
		if !bytes.Equal(log[i], e) {
			return fmt.Errorf("%w: entry %d differs", ErrConflict, i)
		}
	}
	out := make([][]byte, 0, len(log)-n+1)
	out = append(out, u)
	out = append(out, log[n:]...)
	m.logs[room] = out
	return nil
}

// Len returns the length of the room's log (for tests and monitoring).
func (m *Memory) Len(room string) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.logs[room])
}
