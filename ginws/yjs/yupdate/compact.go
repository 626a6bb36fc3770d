package yupdate

// Compact returns an update equivalent to update in which adjacent Items of one client are
// joined the way a live Yjs document joins them (Item.mergeWith), so that a document typed one
// character per update costs about a byte per character instead of ten. Y.mergeUpdates, and so
// Merge, never joins Items: only a live document knows that two Items are neighbours.
//
// Two Items are joined when the right one directly follows the left one in the client's clocks,
// its origin is the left one's last unit, both have the same right origin (or none), and both
// hold strings (concatenated) or deleted content (lengths added). The right one of a join always
// has an origin, so an Item that names its parent can only be the left one. Any other content is
// left alone: map entries take their key from their left neighbour, so joining them is not what
// a document does. Adjacent GC ranges and adjacent Skip ranges are joined too, as Merge does.
//
// Why this is safe: a joined Item depends on nothing its parts did not depend on, clocks and so
// the state vector do not change, and whenever another struct or the delete set names a unit
// inside the joined Item, Yjs splits it there and gets back exactly the right part it had before
// (origin the left part's last unit, the same right origin). Nothing can lie between the parts
// in a document unless its origin is the left part's last unit, which forces that split.
//
// The delete set is copied as it is; client sections are kept where the input starts them. An
// update without joinable neighbours comes back with the same structs. The output shares no
// memory with the input. Errors wrap ErrMalformed.
func Compact(update []byte) ([]byte, error) {
	var r reader
	r.reset(update)
	var w structWriter
	w.buf = make([]byte, 0, len(update))

	var pending block // the struct being built up
	have := false
	pendingStarts := false // pending opens a client section of the input
	var joined []byte      // the concatenated string of pending, once it was joined
	flush := func() {
		if pendingStarts {
			w.open = false
		}
		w.write(&pending, 0)
	}
	for {
		starts := r.left == 0 // the next struct opens a section
		if !r.next() {
			break
		}
		if have && !starts && joinable(&pending, &r.cur) {
			if pending.kind == kindItem && pending.ref == refString {
				if len(joined) == 0 {
					joined = append(joined, pending.content...)
				}
				joined = append(joined, r.cur.content...)
				pending.content = joined
			}
			pending.length += r.cur.length
			continue
		}
		if have {
			flush()
		}
		pending, have, pendingStarts = r.cur, true, starts
		joined = joined[:0]
	}
	start := r.d.Pos()
	if _, _, err := r.finish(false); err != nil {
		return nil, err
	}
	if have {
		flush()
	}
	ds := update[start:]
	out := make([]byte, 0, len(w.buf)+len(w.sections)*(2*lib0MaxVarUint)+len(ds)+lib0MaxVarUint)
	out = w.finish(out)
	return append(out, ds...), nil
}

// joinable reports whether right can be appended to left (see Compact). Both come from the same
// client section, so right.clock == left.end() already holds; it is checked anyway.
func joinable(left, right *block) bool {
	if left.kind != right.kind || left.client != right.client || right.clock != left.end() {
		return false
	}
	if left.kind != kindItem { // GC or Skip ranges
		return true
	}
	if left.ref != right.ref || (left.ref != refString && left.ref != refDeleted) {
		return false
	}
	if !right.hasOrigin || right.origin != (id{left.client, left.end() - 1}) {
		return false
	}
	if left.hasRightOrigin != right.hasRightOrigin || (left.hasRightOrigin && left.rightOrigin != right.rightOrigin) {
		return false
	}
	return true
}
