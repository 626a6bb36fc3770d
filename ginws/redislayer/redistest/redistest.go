// Package redistest is for tests that talk to a real Redis: the machine's server at Addr, or none.
//
// A test that needs Redis calls Need first. Without a reachable server it is skipped with a
// message saying what to start — except under CI=true, where it fails, so CI can never pass by
// skipping.
package redistest

import (
	"fmt"
	"net"
	"os"
	"testing"
	"time"
)

// Addr is where the tests expect Redis.
const Addr = "127.0.0.1:6379"

// Need skips the test (fails it under CI=true) when nothing listens at Addr.
func Need(t testing.TB) {
	t.Helper()
	c, err := net.DialTimeout("tcp", Addr, time.Second)
	if err != nil {
		SkipOrFail(t, fmt.Sprintf("Redis is not reachable at %s (%v): start it with `redis-server` (or `apt-get install redis-server`)", Addr, err))
		return
	}
	c.Close()
}

// SkipOrFail skips the test with msg, or fails it when CI=true: a service or tool a test needs is
// missing.
func SkipOrFail(t testing.TB, msg string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatal(msg + " (CI=true: a missing service is a failure)")
	}
	t.Skip(msg)
}
