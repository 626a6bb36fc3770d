// Package redisstore keeps Yjs room documents in Redis, for yjs.Server processes that share
// rooms: each room's log of updates is a Redis list, appended with RPUSH and compacted by a script
// that checks and replaces its first entries atomically (a compare-and-swap, see ystore.Store), so
// processes appending and compacting at the same time never lose an update. It lives in its own
// package so that apps that keep documents elsewhere do not compile a Redis client.
//
//	client, _ := rueidis.NewClient(rueidis.ClientOption{InitAddress: []string{"127.0.0.1:6379"}})
//	ys := yjs.New(ws, yjs.Config{Store: redisstore.New(client, "myapp:yjs:")})
package redisstore

import (
	"context"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"

	"ginws.dev/ginws/yjs/ystore"

	"github.com/redis/rueidis"
)

// DefaultPrefix is the key prefix New uses when given "".
const DefaultPrefix = "ginws:yjs:"

// Store is a ystore.Store on Redis. A room's log is the list at Key(room): the prefix followed by
// the 64 hex digits of the room name's SHA-256. Because that part has a fixed length, two stores
// whose prefixes start alike ("app:yjs:" and "app:yjs:t2:") can never address the same key, and a
// room name may contain any byte. It is safe for concurrent use, as is the rueidis client under it.
type Store struct {
	client rueidis.Client
	prefix string
}

var _ ystore.Store = (*Store)(nil)

// New returns a Store using client (which the caller closes) and keys starting with prefix
// (DefaultPrefix if empty).
func New(client rueidis.Client, prefix string) *Store {
	if prefix == "" {
		prefix = DefaultPrefix
	}
	return &Store{client: client, prefix: prefix}
}

// Key returns the Redis key of a room's log: the prefix and the hex SHA-256 of the room name
// (redis-cli: LRANGE <Key(room)> 0 -1).
func (s *Store) Key(room string) string {
	sum := sha256.Sum256([]byte(room))
	return s.prefix + hex.EncodeToString(sum[:])
}

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

// compact replaces the first n entries of the list by ARGV[1] if their SHA-1 digests are still
// ARGV[2..n+1], in one step: entries pushed after the caller read the log stay, and a log another
// process compacted meanwhile is left alone (-1).
var compact = rueidis.NewLuaScript(`
local n = #ARGV - 1
local head = redis.call('LRANGE', KEYS[1], 0, n - 1)
if #head < n then return -1 end
for i = 1, n do
  if redis.sha1hex(head[i]) ~= ARGV[i + 1] then return -1 end
end
redis.call('LTRIM', KEYS[1], n, -1)
redis.call('LPUSH', KEYS[1], ARGV[1])
return 1
`)

// Compact replaces the first len(old) entries of the room's log by merged, if they are still
// old. The check compares SHA-1 digests computed in Redis, so old is not sent back.
func (s *Store) Compact(ctx context.Context, room string, old [][]byte, merged []byte) error {
	args := make([]string, 0, len(old)+1)
	args = append(args, rueidis.BinaryString(merged))
	for _, e := range old {
		sum := sha1.Sum(e)
		args = append(args, hex.EncodeToString(sum[:]))
	}
	r, err := compact.Exec(ctx, s.client, []string{s.Key(room)}, args).AsInt64()
	if err != nil {
		return fmt.Errorf("redisstore: compact %q: %w", room, err)
	}
	if r < 0 {
		return fmt.Errorf("redisstore: compact %q (%s entries): %w", room, strconv.Itoa(len(old)), ystore.ErrConflict)
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
