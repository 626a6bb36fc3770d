package yupdate_test

import (
	"testing"

	"ginws.dev/ginws/yjs/yupdate"
)

// typingUpdates builds n updates the way a typing Yjs client emits them: one character each,
// after the previous one (client 2^53-1), and every 10th update a second client overwriting a
// map value and deleting the old one.
func typingUpdates(n int) [][]byte {
	const writer, editor = 1<<53 - 1, 4242
	text := []string{"a", "é", "中", "😀", " "}
	us := make([][]byte, 0, n)
	var clock, edits uint64
	for i := 0; i < n; i++ {
		s := text[i%len(text)]
		switch {
		case i == 0:
			us = append(us, rootString(writer, 0, s))
		case i%10 == 0:
			b := section(1, editor, edits)
			if edits == 0 {
				b.byte(8 | 0x20).uint(1).str("meta").str("title")
			} else {
				b.byte(8 | 0x80 | 0x20).uint(editor).uint(edits - 1)
			}
			b.uint(1).byte(119).str("title " + s)
			if edits == 0 {
				b.uint(0)
			} else { // the overwritten value is deleted
				b.uint(1).uint(editor).uint(1).uint(edits - 1).uint(1)
			}
			us = append(us, b.bytes())
			edits++
			continue
		default:
			us = append(us, afterString(writer, clock, s))
		}
		clock += uint64(len(utf16(s)))
	}
	return us
}

func utf16(s string) []uint16 {
	var u []uint16
	for _, r := range s {
		if r >= 0x10000 {
			u = append(u, 0, 0)
		} else {
			u = append(u, 0)
		}
	}
	return u
}

func benchUpdates(b *testing.B) ([][]byte, []byte) {
	us := typingUpdates(1000)
	merged, err := yupdate.Merge(us...)
	if err != nil {
		b.Fatal(err)
	}
	return us, merged
}

// BenchmarkMerge1000 merges a 1 000-update document in one call (a server compacting a room).
func BenchmarkMerge1000(b *testing.B) {
	us, _ := benchUpdates(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := yupdate.Merge(us...); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkMergeOne merges one new update into a 1 000-update document (a server's hot path).
func BenchmarkMergeOne(b *testing.B) {
	_, merged := benchUpdates(b)
	next := rootString(7, 0, "!")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := yupdate.Merge(merged, next); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDiff answers a client that has half the document.
func BenchmarkDiff(b *testing.B) {
	us, merged := benchUpdates(b)
	half, _ := yupdate.Merge(us[:500]...)
	sv, _ := yupdate.StateVector(half)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := yupdate.Diff(merged, sv); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkStateVector(b *testing.B) {
	_, merged := benchUpdates(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := yupdate.StateVector(merged); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkValidate(b *testing.B) {
	_, merged := benchUpdates(b)
	b.SetBytes(int64(len(merged)))
	b.ReportAllocs()
	for b.Loop() {
		if err := yupdate.Validate(merged); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCompact compacts the merged 1 000-update document (what a room does after each merge
// of its tail).
func BenchmarkCompact(b *testing.B) {
	_, merged := benchUpdates(b)
	b.SetBytes(int64(len(merged)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := yupdate.Compact(merged); err != nil {
			b.Fatal(err)
		}
	}
}
