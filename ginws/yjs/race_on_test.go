//go:build race

package yjs_test

// raceEnabled: the race detector is on. Its sync.Pool drops a quarter of what is put back, so
// tests that count allocations allow for that.
const raceEnabled = true
