package yupdate

// DeletedRanges gives the tests the delete set of update as what it deletes: per client the
// deleted [start, end) clock ranges, sorted and joined, without empty ones (which delete
// nothing). Errors wrap ErrMalformed.
func DeletedRanges(update []byte) (map[uint64][][2]uint64, error) {
	var r reader
	r.reset(update)
	for r.next() {
	}
	ds, _, err := r.finish(true)
	if err != nil {
		return nil, err
	}
	out := map[uint64][][2]uint64{}
	for _, c := range ds {
		for _, rg := range sortAndJoin(c.ranges) {
			if rg.length > 0 {
				out[c.client] = append(out[c.client], [2]uint64{rg.clock, rg.clock + rg.length})
			}
		}
	}
	return out, nil
}
