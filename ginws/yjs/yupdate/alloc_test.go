package yupdate_test

import (
	"runtime"
	"testing"

	"ginws.dev/ginws/yjs/internal/lib0"
	"ginws.dev/ginws/yjs/yupdate"
)

// allocated returns the bytes f allocates on the heap.
func allocated(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// Hostile updates cost memory in proportion to their size, not to the counts they claim: a
// megabyte of the smallest structs or deletions, or a count of 2^40 structs.
func TestAllocationsAreBounded(t *testing.T) {
	// Not parallel: it counts the allocations of the whole process.
	const n = 1 << 19
	gcs := section(n, 3, 0)
	for i := 0; i < n; i++ {
		gcs.byte(0).uint(1) // 2-byte GC structs
	}
	gcs.uint(0)
	dels := new(builder).uint(0).uint(1).uint(3).uint(n)
	for i := 0; i < n; i++ {
		dels.uint(uint64(2 * i)).uint(1) // 2-byte ranges that do not join
	}
	lying := new(builder).uint(1).raw(lib0.AppendVarUint(nil, 1<<40)...).uint(1).uint(0).byte(0).uint(1).uint(0).bytes()
	cases := []struct {
		name   string
		update []byte
		factor uint64 // allowed bytes allocated per input byte
	}{
		{"1 MB of GC structs", gcs.bytes(), 4},
		{"1 MB of deleted ranges", dels.bytes(), 8},
		{"a count of 2^40 structs", lying, 4096},
	}
	for _, c := range cases {
		budget := c.factor * uint64(len(c.update))
		for name, f := range map[string]func(){
			"Validate":    func() { _ = yupdate.Validate(c.update) },
			"StateVector": func() { _, _ = yupdate.StateVector(c.update) },
			"Merge":       func() { _, _ = yupdate.Merge(c.update, []byte{0, 0}) },
			"Diff":        func() { _, _ = yupdate.Diff(c.update, []byte{0}) },
		} {
			got := allocated(f)
			if got > budget {
				t.Errorf("%s: %s allocated %d bytes for %d input bytes", c.name, name, got, len(c.update))
			}
			t.Logf("%s: %s allocated %d bytes for %d input bytes", c.name, name, got, len(c.update))
		}
	}
}

// A small diff of a large document allocates about what it writes, not the document's size.
func TestDiffAllocatesWhatItWrites(t *testing.T) {
	// Not parallel: it counts the allocations of the whole process.
	const n = 1 << 19
	gcs := section(n, 3, 0)
	for i := 0; i < n; i++ {
		gcs.byte(0).uint(1)
	}
	update := gcs.uint(0).bytes() // 1 MiB
	sv := yupdate.EncodeStateVector(map[uint64]uint64{3: n - 1})
	var diff []byte
	got := allocated(func() { diff, _ = yupdate.Diff(update, sv) })
	if len(diff) > 16 {
		t.Fatalf("Diff = %x, want one GC struct", diff)
	}
	if got > 256<<10 {
		t.Errorf("a %d-byte diff of a %d-byte update allocated %d bytes", len(diff), len(update), got)
	}
	t.Logf("a %d-byte diff of a %d-byte update allocated %d bytes", len(diff), len(update), got)
}
