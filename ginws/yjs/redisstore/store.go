// Package redisstore keeps Yjs room documents in Redis, for yjs.Server processes that share
// rooms: each room's log of updates is a Redis list, appended with RPUSH and compacted with a
// script that replaces its first entries atomically, so processes appending at the same time
// never lose an update. It lives in its own package so that apps that keep documents elsewhere do
// not compile a Redis client.
//
//	client, _ := rueidis.NewClient(rueidis.ClientOption{InitAddress: []string{"127.0.0.1:6379"}})
//	ys := yjs.New(ws, yjs.Config{Store: redisstore.New(client, "myapp:yjs:")})
package redisstore

import (
	"context"
	"fmt"

	"github.com/redis/rueidis"

	"ginws.dev/ginws/yjs"
)

// DefaultPrefix is the key prefix New uses when given "".
const DefaultPrefix = "ginws:yjs:"

// Store is a yjs.Store on Redis. A room's log is the list at prefix + room name. It is safe for
// concurrent use, as is the rueidis client under it.
type Store struct {
	client rueidis.Client
	prefix string
}

var _ yjs.Store = (*Store)(nil)

// New returns a Store using client (which the caller closes) and keys starting with prefix
// (DefaultPrefix if empty).
func New(client rueidis.Client, prefix string) *Store {
	if prefix == "" {
		prefix = DefaultPrefix
	}
	return &Store{client: client, prefix: prefix}
}

// Key returns the Redis key of a room's log.
func (s *Store) Key(room string) string { return s.prefix + room }

// Load returns the room's log, oldest first.
func (s *Store) Load(ctx context.Context, room string) ([][]byte, error) {
	vals, err := s.client.Do(ctx, s.client.B().Lrange().Key(s.Key(room)).Start(0).Stop(-1).Build()).AsStrSlice()
	if err != nil {
		return nil, fmt.Errorf("redisstore: load %q: %w", room, err)
	}
	if len(vals) == 0 {
		return nil, nil
	}
	out := make([][]byte, len(vals))
	for i, v := range vals {
		out[i] = []byte(v)
	}
	return out, nil
}

// Append adds update to the end of the room's log.
func (s *Store) Append(ctx context.Context, room string, update []byte) (int, error) {
	n, err := s.client.Do(ctx, s.client.B().Rpush().Key(s.Key(room)).Element(rueidis.BinaryString(update)).Build()).AsInt64()
	if err != nil {
		return 0, fmt.Errorf("redisstore: append to %q: %w", room, err)
	}
	return int(n), nil
}

// compact replaces the first n entries of the list by ARGV[1], in one step: entries pushed after
// the caller read the log stay.
var compact = rueidis.NewLuaScript(`
local n = tonumber(ARGV[2])
if redis.call('LLEN', KEYS[1]) < n then return -1 end
redis.call('LTRIM', KEYS[1], n, -1)
redis.call('LPUSH', KEYS[1], ARGV[1])
return 1
`)

// Compact replaces the first n entries of the room's log by merged.
func (s *Store) Compact(ctx context.Context, room string, merged []byte, n int) error {
	if n < 0 {
		return fmt.Errorf("redisstore: compact %q: negative count %d", room, n)
	}
	r, err := compact.Exec(ctx, s.client, []string{s.Key(room)}, []string{rueidis.BinaryString(merged), fmt.Sprint(n)}).AsInt64()
	if err != nil {
		return fmt.Errorf("redisstore: compact %q: %w", room, err)
	}
	if r < 0 {
		return fmt.Errorf("redisstore: compact %q: the log holds fewer than %d entries", room, n)
	}
	return nil
}

// Delete removes the room's log (for tests and for apps that delete documents).
func (s *Store) Delete(ctx context.Context, room string) error {
	if err := s.client.Do(ctx, s.client.B().Del().Key(s.Key(room)).Build()).Error(); err != nil {
		return fmt.Errorf("redisstore: delete %q: %w", room, err)
	}
	return nil
}
