// Package drain has Queue, the ordered hand-off both channel layers use to send presence events
// without holding a lock while sending.
package drain

import "sync"

// Queue passes items to a flush function in the order they were queued, never while a lock is
// held, and one flush at a time: whoever queues items flushes the queue unless another goroutine
// already is, in which case that goroutine takes them in its next round. A flush gets everything
// queued since the previous one. The zero value is ready; a Queue must not be copied.
type Queue[T any] struct {
	mu       sync.Mutex // guards queue and draining; never held while flush runs
	queue    []T
	draining bool
}

// Send queues items and, unless another goroutine is already flushing, flushes until the queue is
// empty. It returns once its items are flushed or handed to the goroutine that is flushing.
func (q *Queue[T]) Send(items []T, flush func([]T)) {
	if len(items) == 0 {
		return
	}
	q.mu.Lock()
	q.queue = append(q.queue, items...)
	if q.draining {
		q.mu.Unlock()
		return
	}
	q.draining = true
	for len(q.queue) > 0 {
		batch := q.queue
		q.queue = nil
		q.mu.Unlock()
		flush(batch)
		q.mu.Lock()
	}
	q.draining = false
	q.mu.Unlock()
}
