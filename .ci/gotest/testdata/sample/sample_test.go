package sample

import "testing"

func TestPass(t *testing.T) { t.Log("a passing test's log is not shown") }

func TestFail(t *testing.T) {
	t.Run("fine", func(t *testing.T) {})
	t.Run("broken", func(t *testing.T) { t.Error("want 1, got 2") })
}

func TestNeedsRedis(t *testing.T) {
	t.Skip("Redis is not reachable: start redis-server (dial tcp: connection refused)")
}

func TestNeedsRedisToo(t *testing.T) {
	t.Run("sub", func(t *testing.T) { t.Skip("Redis is not reachable: start redis-server (dial tcp: i/o timeout)") })
}

func TestNeedsNode(t *testing.T) { t.Skip("needs Node") }
