package yupdate

import (
	"slices"

	"ginws.dev/ginws/yjs/internal/lib0"
)

// A state vector maps each client to the clock after its last struct a document has without
// gaps; encoded it is a varuint count and (client, clock) pairs.

// StateVector returns the encoded state vector of an update, like
// Y.encodeStateVectorFromUpdate: per client section in update order, the end of the structs
// that run without a gap from clock 0. A client whose structs start later, or that has only a
// gap, is left out (the update cannot bring a peer that lacks the start up to date).
func StateVector(update []byte) ([]byte, error) {
	var r reader
	r.reset(update)
	if !r.next() {
		if _, _, err := r.finish(false); err != nil {
			return nil, err
		}
		return []byte{0}, nil
	}
	type entry struct{ client, clock uint64 }
	var entries []entry
	client := r.cur.client
	counting := r.cur.clock == 0
	var clock uint64
	if counting {
		clock = r.cur.end() // Yjs counts a leading Skip at clock 0 here; so do we
	}
	for ok := true; ok; ok = r.next() {
		b := &r.cur
		if b.client != client {
			if clock != 0 {
				entries = append(entries, entry{client, clock})
			}
			client, clock, counting = b.client, 0, b.clock == 0
		}
		if b.kind == kindSkip {
			counting = false
		}
		if counting {
			clock = b.end()
		}
	}
	if _, _, err := r.finish(false); err != nil {
		return nil, err
	}
	if clock != 0 {
		entries = append(entries, entry{client, clock})
	}
	out := lib0.AppendVarUint(make([]byte, 0, 1+len(entries)*12), uint64(len(entries)))
	for _, e := range entries {
		out = lib0.AppendVarUint(out, e.client)
		out = lib0.AppendVarUint(out, e.clock)
	}
	return out, nil
}

// DecodeStateVector reads an encoded state vector. A client listed twice keeps its last clock,
// as in Yjs. Bytes after the vector are an error. Errors wrap ErrMalformed.
func DecodeStateVector(sv []byte) (map[uint64]uint64, error) {
	d := lib0.NewDecoder(sv)
	n, err := d.ReadVarUint()
	if err != nil {
		return nil, wrap("state vector size", err)
	}
	if n > uint64(d.Remaining()/2) {
		return nil, errorf("state vector of %d clients in %d bytes", n, d.Remaining())
	}
	m := make(map[uint64]uint64, n)
	for i := uint64(0); i < n; i++ {
		client, err := d.ReadVarUint()
		if err != nil {
			return nil, wrap("state vector client", err)
		}
		clock, err := d.ReadVarUint()
		if err != nil {
			return nil, wrap("state vector clock", err)
		}
		m[client] = clock
	}
	if d.Remaining() != 0 {
		return nil, errorf("%d bytes after the state vector", d.Remaining())
	}
	return m, nil
}

// EncodeStateVector encodes sv with clients in descending order, as Y.encodeStateVector writes
// a document's state vector.
func EncodeStateVector(sv map[uint64]uint64) []byte {
	clients := make([]uint64, 0, len(sv))
	for c := range sv {
		clients = append(clients, c)
	}
	slices.Sort(clients)
	out := lib0.AppendVarUint(make([]byte, 0, 1+len(sv)*12), uint64(len(sv)))
	for i := len(clients) - 1; i >= 0; i-- {
		out = lib0.AppendVarUint(out, clients[i])
		out = lib0.AppendVarUint(out, sv[clients[i]])
	}
	return out
}
