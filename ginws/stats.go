package ginws

import "sync"

// codeCounts counts events by a code (a close code, an HTTP status). It is written once per
// connection or handshake, never per message, so a mutex is cheap here.
type codeCounts struct {
	mu sync.Mutex
	n  map[int]uint64 // guarded by mu
}

func (c *codeCounts) count(code int) {
	c.mu.Lock()
	if c.n == nil {
		c.n = make(map[int]uint64)
	}
	c.n[code]++
	c.mu.Unlock()
}

func (c *codeCounts) snapshot() map[int]uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	m := make(map[int]uint64, len(c.n))
	for k, v := range c.n {
		m[k] = v
	}
	return m
}
