package yupdate

import (
	"slices"

	"ginws.dev/ginws/yjs/internal/lib0"
)

// A delete set lists, per client, the clock ranges deleted in a document. Yjs writes clients in
// descending order; each client's ranges as they are (after a merge: sorted and joined).
type dsRange struct{ clock, length uint64 }

type dsClient struct {
	client uint64
	ranges []dsRange
}

type deleteSet []dsClient

// readDeleteSet reads a delete set the way Yjs does: a client listed twice gets the ranges of
// both entries, a client listed with no ranges is dropped. Without keep it only checks it.
// canonical reports whether the set is already in the form Yjs writes (clients strictly
// descending, none without ranges), so that its bytes can be copied as they are.
func readDeleteSet(d *lib0.Decoder, keep bool) (ds deleteSet, canonical bool, err error) {
	n, err := d.ReadVarUint()
	if err != nil {
		return nil, false, wrap("delete set client count", err)
	}
	if n > uint64(d.Remaining()/2) {
		return nil, false, errorf("%d delete set clients in %d bytes", n, d.Remaining())
	}
	canonical = true
	var seen map[uint64]int // built once ds is too long to scan
	var prev uint64
	for i := uint64(0); i < n; i++ {
		client, err := d.ReadVarUint()
		if err != nil {
			return nil, false, wrap("delete set client", err)
		}
		count, err := d.ReadVarUint()
		if err != nil {
			return nil, false, wrap("delete set range count", err)
		}
		if count > uint64(d.Remaining()/2) {
			return nil, false, errorf("%d deleted ranges of client %d in %d bytes", count, client, d.Remaining())
		}
		if count == 0 || (i > 0 && client >= prev) {
			canonical = false
		}
		prev = client
		if count == 0 {
			continue
		}
		at := -1
		if keep {
			at = ds.index(client, &seen)
		}
		if keep && at < 0 {
			ds = append(ds, dsClient{client: client, ranges: make([]dsRange, 0, count)})
			at = len(ds) - 1
			if seen != nil {
				seen[client] = at
			}
		}
		for j := uint64(0); j < count; j++ {
			clock, err := d.ReadVarUint()
			if err != nil {
				return nil, false, wrap("deleted clock", err)
			}
			length, err := d.ReadVarUint()
			if err != nil {
				return nil, false, wrap("deleted length", err)
			}
			if clock+length > lib0.MaxSafeInteger {
				return nil, false, errorf("deleted range %d:%d+%d goes beyond 2^53-1", client, clock, length)
			}
			if keep {
				ds[at].ranges = append(ds[at].ranges, dsRange{clock, length})
			}
		}
	}
	return ds, canonical, nil
}

// index finds client in ds: by a scan while ds is short (a single update rarely lists many
// clients), then through *seen, which it builds on first need.
func (ds deleteSet) index(client uint64, seen *map[uint64]int) int {
	if *seen == nil && len(ds) > 16 {
		*seen = make(map[uint64]int, 2*len(ds))
		for i := range ds {
			(*seen)[ds[i].client] = i
		}
	}
	if *seen != nil {
		if i, ok := (*seen)[client]; ok {
			return i
		}
		return -1
	}
	for i := range ds {
		if ds[i].client == client {
			return i
		}
	}
	return -1
}

func (ds deleteSet) empty() bool { return len(ds) == 0 }

// deleteSetSize is the number of bytes appendDeleteSet writes for ds.
func deleteSetSize(ds deleteSet) int {
	n := lib0.VarUintLen(uint64(len(ds)))
	for _, c := range ds {
		n += lib0.VarUintLen(c.client) + lib0.VarUintLen(uint64(len(c.ranges)))
		for _, r := range c.ranges {
			n += lib0.VarUintLen(r.clock) + lib0.VarUintLen(r.length)
		}
	}
	return n
}

// appendDeleteSet writes ds with clients in descending order, ranges as they are.
func appendDeleteSet(dst []byte, ds deleteSet) []byte {
	slices.SortFunc(ds, func(a, b dsClient) int {
		switch {
		case a.client > b.client:
			return -1
		case a.client < b.client:
			return 1
		}
		return 0
	})
	dst = lib0.AppendVarUint(dst, uint64(len(ds)))
	for _, c := range ds {
		dst = lib0.AppendVarUint(dst, c.client)
		dst = lib0.AppendVarUint(dst, uint64(len(c.ranges)))
		for _, r := range c.ranges {
			dst = lib0.AppendVarUint(dst, r.clock)
			dst = lib0.AppendVarUint(dst, r.length)
		}
	}
	return dst
}

// mergeDeleteSets unites delete sets: per client all ranges, sorted by clock, with overlapping
// and adjacent ranges joined.
func mergeDeleteSets(sets []deleteSet) deleteSet {
	var merged deleteSet
	at := map[uint64]int{}
	for _, ds := range sets {
		for _, c := range ds {
			i, ok := at[c.client]
			if !ok {
				// The sets were read for this merge only: their slices can be taken over.
				at[c.client] = len(merged)
				merged = append(merged, c)
				continue
			}
			merged[i].ranges = append(merged[i].ranges, c.ranges...)
		}
	}
	for i := range merged {
		merged[i].ranges = sortAndJoin(merged[i].ranges)
	}
	return merged
}

func sortAndJoin(rs []dsRange) []dsRange {
	slices.SortStableFunc(rs, func(a, b dsRange) int {
		switch {
		case a.clock < b.clock:
			return -1
		case a.clock > b.clock:
			return 1
		}
		return 0
	})
	if len(rs) < 2 {
		return rs
	}
	j := 1
	for i := 1; i < len(rs); i++ {
		left, right := &rs[j-1], rs[i]
		if left.clock+left.length >= right.clock {
			left.length = max(left.length, right.clock+right.length-left.clock)
		} else {
			rs[j] = right
			j++
		}
	}
	return rs[:j]
}
