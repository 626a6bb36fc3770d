package redislayer

import "testing"

// The vectors of channels_redis' own test_consistent_hash; every process sharing a layer must pick
// the same shard for a name.
func TestConsistentHashVectors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		ring int
		want int
	}{
		{"key_one", 1, 0}, {"key_two", 1, 0},
		{"key_one", 2, 1}, {"key_two", 2, 0},
		{"key_one", 10, 6}, {"key_two", 10, 4},
	} {
		if got := consistentHash(tc.name, tc.ring); got != tc.want {
			t.Errorf("consistentHash(%q, %d) = %d, want %d", tc.name, tc.ring, got, tc.want)
		}
	}
}
