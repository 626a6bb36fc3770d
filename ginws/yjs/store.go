package yjs

import (
	"context"
	"fmt"
	"sync"
)

// Store persists each room's document as a log of Yjs v1 updates. The Server appends the updates
// it applies (collected for Config.SaveDelay and merged into one) and, when a room's log holds
// more than Config.CompactAfter entries, replaces the oldest entries by their merge.
//
// Several processes may append to one room's log at the same time; Compact replaces exactly the
// first n entries, so an update appended meanwhile by another process is kept. Implementations
// must be safe for concurrent use; every method takes a context and returns its error once it is
// done. The package redisstore keeps the log in Redis for apps that run several processes.
type Store interface {
	// Load returns the room's log, oldest first (nil for a room never stored). The caller may
	// keep the slices and must not modify them.
	Load(ctx context.Context, room string) ([][]byte, error)
	// Append adds update to the end of the room's log and returns the log's length after it.
	Append(ctx context.Context, room string, update []byte) (int, error)
	// Compact replaces the first n entries of the room's log by merged (their merge), keeping
	// the entries after them. It fails if the log holds fewer than n entries.
	Compact(ctx context.Context, room string, merged []byte, n int) error
}

// MemoryStore keeps the logs in memory: documents outlive their rooms, not the process. It is
// safe for concurrent use.
type MemoryStore struct {
	mu   sync.Mutex
	logs map[string][][]byte
}

var _ Store = (*MemoryStore)(nil)

// NewMemoryStore returns an empty MemoryStore.
func NewMemoryStore() *MemoryStore { return &MemoryStore{logs: make(map[string][][]byte)} }

// Load returns a copy of the room's log.
func (m *MemoryStore) Load(ctx context.Context, room string) ([][]byte, error) {
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
func (m *MemoryStore) Append(ctx context.Context, room string, update []byte) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	u := append([]byte(nil), update...)
	m.mu.Lock()
	defer m.mu.Unlock()
	m.logs[room] = append(m.logs[room], u)
	return len(m.logs[room]), nil
}

// Compact replaces the first n entries of the room's log by merged.
func (m *MemoryStore) Compact(ctx context.Context, room string, merged []byte, n int) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	u := append([]byte(nil), merged...)
	m.mu.Lock()
	defer m.mu.Unlock()
	log := m.logs[room]
	if n < 0 || n > len(log) {
		return fmt.Errorf("yjs: compact %d entries of a log of %d", n, len(log))
	}
	out := make([][]byte, 0, len(log)-n+1)
	out = append(out, u)
	out = append(out, log[n:]...)
	m.logs[room] = out
	return nil
}

// Len returns the length of the room's log (for tests and monitoring).
func (m *MemoryStore) Len(room string) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.logs[room])
}
