// Package redistest is for tests that talk to a real Redis: the machine's server at Addr, or none.
//
// A test that needs Redis calls Need first. Without a reachable server it is skipped with a
// message saying what to start — except under CI=true, where it fails, so CI can never pass by
// skipping.
package redistest

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
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

// RestartableAddr returns a free loopback address for a server that a test stops and starts
// again on the same address: a Redis killed and restarted, a chat process SIGKILLed and run
// again. Its port lies below the kernel's ephemeral range (ip_local_port_range), which a port
// from Listen(":0") does not: while the server is down, the kernel may give that port to an
// outgoing connection of a parallel test, and the restart then cannot bind it. Ports between
// 20000 and the ephemeral range are tried at random until one can be listened on; where the range
// starts too low for that, it falls back to Listen(":0").
func RestartableAddr(t testing.TB) string {
	t.Helper()
	if low := ephemeralLow(); low > 21000 {
		for range 100 {
			addr := fmt.Sprintf("127.0.0.1:%d", 20000+rand.IntN(low-20000))
			if ln, err := net.Listen("tcp", addr); err == nil {
				ln.Close()
				return addr
			}
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// ephemeralLow is the first port of the kernel's ephemeral range, 0 when unknown.
func ephemeralLow() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 0
	}
	low, _ := strconv.Atoi(f[0])
	return low
}
