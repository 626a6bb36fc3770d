package ginws

import (
	"slices"
	"sync"
	"unsafe"
)

// queuePool recycles the arrays behind connections' queues (the inbox, the outbound frames), by
// size class: 16, 32, 64 ... 1024 elements. A queue that fills up moves to an array of the next
// class from the pool instead of growing with append (which would allocate, and leave garbage, on
// every burst), and an idle connection gives its arrays back, so it holds none while it sleeps.
// Queues beyond the largest class are allocated and dropped as usual.
//
// The pools keep a pointer to the array's first element (unsafe.Pointer converts to an interface
// without allocating, unlike a slice header); the class says its length.
type queuePool[T any] struct {
	classes [queueClasses]sync.Pool
}

// The smallest class holds 16: a burst of a busy room's messages (the load tool's fan-out writes
// about nine frames per system call) fits without moving to a bigger array mid-burst.
const (
	minQueueClass = 16
	queueClasses  = 7 // 16 << 6 = 1024 elements at most
)

var (
	inboxPool queuePool[inboxItem]
	outPool   queuePool[outFrame]
)

// class returns the class of an array of n elements, or -1 when n is not a class size.
func queueClass(n int) int {
	for i, size := 0, minQueueClass; i < queueClasses; i, size = i+1, size*2 {
		if n == size {
			return i
		}
	}
	return -1
}

// get returns an empty slice whose array is of class i.
func (p *queuePool[T]) get(i int) []T {
	size := minQueueClass << i
	if ptr, ok := p.classes[i].Get().(unsafe.Pointer); ok {
		return unsafe.Slice((*T)(ptr), size)[:0]
	}
	return make([]T, 0, size)
}

// put gives s's array back (cleared, so that it holds no references). Arrays that are not of a
// class size are left to the garbage collector.
func (p *queuePool[T]) put(s []T) {
	i := queueClass(cap(s))
	if i < 0 {
		return
	}
	s = s[:cap(s)]
	clear(s)
	p.classes[i].Put(unsafe.Pointer(unsafe.SliceData(s)))
}

// push appends v to s, moving s to an array of the next class when it is full.
func (p *queuePool[T]) push(s []T, v T) []T {
	if len(s) == cap(s) {
		s = p.grow(s)
	}
	return append(s, v)
}

// grow returns s's elements in an array with room for more: the next class, or (past the largest
// class) what append would give. s's array goes back to the pool.
func (p *queuePool[T]) grow(s []T) []T {
	next := 0
	if c := cap(s); c >= minQueueClass {
		i := queueClass(c)
		if i < 0 || i+1 == queueClasses {
			bigger := slices.Grow(s, 1) // beyond the classes: ordinary growth
			p.put(s)
			return bigger
		}
		next = i + 1
	}
	bigger := append(p.get(next), s...)
	p.put(s)
	return bigger
}
