package redisstore_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"ginws.dev/ginws/yjs/ystore"

	"github.com/redis/rueidis"
	"go.uber.org/goleak"

	"ginws.dev/ginws/redislayer/redistest"
	"ginws.dev/ginws/yjs/redisstore"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// redisDB is the Redis database the yjs tests use (see the project's DB allocation).
const redisDB = 5

// newStore returns a Store on Redis DB 5 with a prefix of its own, whose keys are deleted when the
// test ends. Without Redis the test is skipped — or fails when CI=true.
func newStore(t *testing.T) (*redisstore.Store, rueidis.Client) {
	t.Helper()
	redistest.Need(t)
	client, err := rueidis.NewClient(rueidis.ClientOption{
		InitAddress: []string{redistest.Addr}, SelectDB: redisDB, DisableCache: true,
		Dialer: net.Dialer{Timeout: 2 * time.Second},
	})
	if err != nil {
		t.Fatal(err)
	}
	var id [6]byte
	_, _ = rand.Read(id[:])
	prefix := "ginwstest:yjs:" + hex.EncodeToString(id[:]) + ":"
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		keys, err := client.Do(ctx, client.B().Keys().Pattern(prefix+"*").Build()).AsStrSlice()
		if err == nil && len(keys) > 0 {
			_ = client.Do(ctx, client.B().Del().Key(keys...).Build()).Error()
		}
		client.Close()
	})
	return redisstore.New(client, prefix), client
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestAppendLoadCompact(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t)
	ctx := ctxT(t)
	room := "notes/2024 ünïcode"
	if log, err := s.Load(ctx, room); err != nil || log != nil {
		t.Fatalf("Load of an unknown room = %v, %v; want nil, nil", log, err)
	}
	// Binary payloads, including NUL and bytes that are not UTF-8, must round-trip.
	entries := [][]byte{{0, 0}, {1, 0xff, 0, 0xfe}, bytes.Repeat([]byte{0x80}, 70000)}
	for i, e := range entries {
		n, err := s.Append(ctx, room, e)
		if err != nil {
			t.Fatal(err)
		}
		if n != i+1 {
			t.Fatalf("Append #%d returned length %d", i+1, n)
		}
	}
	log, err := s.Load(ctx, room)
	if err != nil {
		t.Fatal(err)
	}
	if len(log) != len(entries) {
		t.Fatalf("Load returned %d entries, want %d", len(log), len(entries))
	}
	for i := range entries {
		if !bytes.Equal(log[i], entries[i]) {
			t.Fatalf("entry %d changed in Redis", i)
		}
	}

	// An entry appended after the log was read survives compaction of what was read.
	if _, err := s.Append(ctx, room, []byte("late")); err != nil {
		t.Fatal(err)
	}
	if err := s.Compact(ctx, room, log, []byte("merged")); err != nil {
		t.Fatal(err)
	}
	log, err = s.Load(ctx, room)
	if err != nil {
		t.Fatal(err)
	}
	if len(log) != 2 || string(log[0]) != "merged" || string(log[1]) != "late" {
		t.Fatalf("after Compact the log is %q, want [merged late]", log)
	}

	// Compacting more entries than the log holds is refused and changes nothing.
	if err := s.Compact(ctx, room, [][]byte{[]byte("merged"), []byte("late"), []byte("x")}, []byte("x")); !errors.Is(err, ystore.ErrConflict) {
		t.Fatalf("Compact of 3 entries of a log of 2: %v, want ErrConflict", err)
	}
	if log, _ := s.Load(ctx, room); len(log) != 2 {
		t.Fatalf("a refused Compact changed the log to %q", log)
	}
	// Compacting the whole log leaves exactly the merge.
	if err := s.Compact(ctx, room, [][]byte{[]byte("merged"), []byte("late")}, []byte("all")); err != nil {
		t.Fatal(err)
	}
	if log, _ := s.Load(ctx, room); len(log) != 1 || string(log[0]) != "all" {
		t.Fatalf("after compacting the whole log: %q", log)
	}
	if err := s.Delete(ctx, room); err != nil {
		t.Fatal(err)
	}
	if log, _ := s.Load(ctx, room); log != nil {
		t.Fatalf("after Delete: %q", log)
	}
}

// Appends from many writers while one compacts: no append is lost.
func TestConcurrentAppendsSurviveCompaction(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t)
	ctx := ctxT(t)
	const writers, each = 4, 50
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				if _, err := s.Append(ctx, "r", []byte{byte(w), byte(i)}); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	compacted := 0 // entries folded into the compacted ones
	for range 10 {
		log, err := s.Load(ctx, "r")
		if err != nil {
			t.Fatal(err)
		}
		if len(log) < 2 {
			continue
		}
		// "Merge" by concatenating the raw entries (each 2 bytes, or earlier merges).
		if err := s.Compact(ctx, "r", log, bytes.Join(log, nil)); err != nil {
			t.Fatal(err)
		}
		compacted++
	}
	wg.Wait()
	log, err := s.Load(ctx, "r")
	if err != nil {
		t.Fatal(err)
	}
	total := len(bytes.Join(log, nil))
	if total != writers*each*2 {
		t.Fatalf("the log holds %d bytes after %d compactions, want %d: appends were lost", total, compacted, writers*each*2)
	}
}

// Two processes load the same log and both compact it: the second compaction finds the log
// changed (the first one's merge, then appends) and must leave it alone instead of deleting the
// merge and the appends that followed. Run against Redis and against MemoryStore.
func TestInterleavedCompactionsKeepEveryEntry(t *testing.T) {
	t.Parallel()
	rs, _ := newStore(t)
	for _, tc := range []struct {
		name  string
		store ystore.Store
	}{{"redis", rs}, {"memory", ystore.NewMemory()}} {
		t.Run(tc.name, func(t *testing.T) {
			s, ctx, room := tc.store, ctxT(t), "interleaved:"+tc.name
			for i := range 4 {
				if _, err := s.Append(ctx, room, []byte{'e', byte('0' + i)}); err != nil {
					t.Fatal(err)
				}
			}
			p1, err := s.Load(ctx, room)
			if err != nil {
				t.Fatal(err)
			}
			p2, err := s.Load(ctx, room)
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Compact(ctx, room, p1, bytes.Join(p1, nil)); err != nil {
				t.Fatal(err)
			}
			for i := range len(p2) { // enough appends that the log is as long as p2 again
				if _, err := s.Append(ctx, room, []byte{'a', byte('0' + i)}); err != nil {
					t.Fatal(err)
				}
			}
			err = s.Compact(ctx, room, p2, bytes.Join(p2, nil))
			if !errors.Is(err, ystore.ErrConflict) {
				t.Fatalf("the second, stale compaction: %v, want ErrConflict", err)
			}
			log, err := s.Load(ctx, room)
			if err != nil {
				t.Fatal(err)
			}
			if got, want := string(bytes.Join(log, []byte(" "))), "e0e1e2e3 a0 a1 a2 a3"; got != want {
				t.Fatalf("log after interleaved compactions: %q, want %q", got, want)
			}
			// A compaction of the same entries by content still succeeds (nothing is lost by
			// merging entries that are still there).
			if err := s.Compact(ctx, room, log[:2], bytes.Join(log[:2], nil)); err != nil {
				t.Fatal(err)
			}
			if log, _ := s.Load(ctx, room); len(log) != 4 || string(log[0]) != "e0e1e2e3a0" {
				t.Fatalf("after a fresh compaction: %q", log)
			}
		})
	}
}

// Keys cannot collide across prefixes that start alike, whatever the room names contain.
func TestKeysDoNotCollideAcrossPrefixes(t *testing.T) {
	t.Parallel()
	rs, client := newStore(t)
	ctx := ctxT(t)
	base := rs.Key("")[:len(rs.Key(""))-64] // this test's prefix
	a := redisstore.New(client, base+"app:yjs:")
	b := redisstore.New(client, base+"app:yjs:t2:")
	if a.Key("t2:x") == b.Key("x") {
		t.Fatalf("keys collide: %s", a.Key("t2:x"))
	}
	if _, err := a.Append(ctx, "t2:x", []byte("public")); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Append(ctx, "x", []byte("private")); err != nil {
		t.Fatal(err)
	}
	la, _ := a.Load(ctx, "t2:x")
	lb, _ := b.Load(ctx, "x")
	if fmt.Sprint(la) != fmt.Sprint([][]byte{[]byte("public")}) || fmt.Sprint(lb) != fmt.Sprint([][]byte{[]byte("private")}) {
		t.Fatalf("logs mixed across prefixes: %q / %q", la, lb)
	}
}
