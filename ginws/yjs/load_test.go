package yjs_test

import (
	"testing"
	"time"

	"ginws.dev/ginws/yjs/ystore"

	"ginws.dev/ginws/yjs"
	"ginws.dev/ginws/yjs/yproto"
	"ginws.dev/ginws/yjs/yupdate"
)

// keystroke returns the v1 update of client typing one character at the end of the text "t",
// after its own characters 0..clock-1 — what a Yjs client sends for each key press.
func keystroke(client, clock uint64, ch byte) []byte {
	b := []byte{1, 1}
	b = appendVarUint(b, client)
	b = appendVarUint(b, clock)
	if clock == 0 {
		b = append(b, 0x04, 1, 1, 't') // string content, parent is the root type "t"
	} else {
		b = append(b, 0x84) // string content with a left origin
		b = appendVarUint(b, client)
		b = appendVarUint(b, clock-1)
	}
	return append(b, 1, ch, 0) // one character, empty delete set
}

func appendVarUint(b []byte, v uint64) []byte {
	for v >= 0x80 {
		b = append(b, byte(v)|0x80)
		v >>= 7
	}
	return append(b, byte(v))
}

// Thousands of keystrokes are applied one by one (merged in batches by the room goroutine),
// relayed in order, and the document ends with all of them — in memory and in the store.
func TestManyKeystrokes(t *testing.T) {
	t.Parallel()
	const n = 3000
	store := ystore.NewMemory()
	a := newApp(t, nil, yjs.Config{Store: store, UnloadDelay: -1, SaveDelay: 5 * time.Millisecond, CompactAfter: 8})
	w, _ := a.dial(t, "/yjs/typing")
	r, _ := a.dial(t, "/yjs/typing")
	for _, i := range []uint64{0, 1, 200, n - 1} {
		if err := yupdate.Validate(keystroke(7, i, 'a')); err != nil {
			t.Fatalf("keystroke %d is not a valid update: %v", i, err)
		}
	}
	go func() {
		for i := range uint64(n) {
			_ = w.SendBytes(ctxT(t), yproto.AppendSyncUpdate(nil, keystroke(7, i, 'a'+byte(i%26))))
		}
	}()
	for i := range uint64(n) {
		m := r.next(yproto.MsgSync)
		if string(m.Payload) != string(keystroke(7, i, 'a'+byte(i%26))) {
			t.Fatalf("relayed update %d out of order or changed", i)
		}
	}
	want := map[uint64]uint64{7: n}
	checkSV := func(what string, doc []byte) {
		t.Helper()
		sv, err := yupdate.StateVector(doc)
		if err != nil {
			t.Fatal(err)
		}
		got, err := yupdate.DecodeStateVector(sv)
		if err != nil || len(got) != 1 || got[7] != n {
			t.Fatalf("%s: state vector %v (%v), want %v", what, got, err, want)
		}
	}
	doc, err := a.ys.Document(ctxT(t), "typing")
	if err != nil {
		t.Fatal(err)
	}
	checkSV("in memory", doc)
	_ = w.Disconnect(ctxT(t))
	_ = r.Disconnect(ctxT(t))
	waitFor(t, "the room to unload", func() bool { return len(a.ys.Rooms()) == 0 })
	doc, err = a.ys.Document(ctxT(t), "typing")
	if err != nil {
		t.Fatal(err)
	}
	checkSV("stored", doc)
	// How many saves the keystrokes take depends on timing; however many, the log must stay
	// short: compacted after CompactAfter (8) entries, or written whole when the backlog is large.
	if st := a.ys.Stats(); st.Applied != n || store.Len("typing") > 9 || (st.Saves > 8 && st.Compactions == 0) {
		t.Fatalf("stats %+v, stored log of %d entries", st, store.Len("typing"))
	}
	t.Logf("%d keystrokes: %d bytes merged, stats %+v", n, len(doc), a.ys.Stats())
}

// BenchmarkRelay measures keystrokes through one room: one writer, 10 readers; each keystroke
// is validated, applied, and relayed to every reader (over real loopback WebSockets, the readers'
// gorilla clients running on the same cores).
func BenchmarkRelay(b *testing.B) {
	const readers = 10
	a := newApp(b, nil, yjs.Config{})
	w, _ := a.dial(b, "/yjs/bench")
	rs := make([]*client, readers)
	for i := range rs {
		rs[i], _ = a.dial(b, "/yjs/bench")
	}
	msgs := make([][]byte, b.N)
	for i := range msgs {
		msgs[i] = yproto.AppendSyncUpdate(nil, keystroke(9, uint64(i), 'x'))
	}
	ctx := ctxT(b)
	b.ResetTimer()
	start := time.Now()
	done := make(chan struct{}, readers)
	for _, r := range rs {
		go func() {
			for range b.N {
				if _, err := r.ReceiveBytes(ctx); err != nil {
					b.Error(err)
					break
				}
			}
			done <- struct{}{}
		}()
	}
	for _, m := range msgs {
		if err := w.SendBytes(ctx, m); err != nil {
			b.Fatal(err)
		}
	}
	for range readers {
		<-done
	}
	el := time.Since(start).Seconds()
	b.ReportMetric(float64(b.N)/el, "keystrokes/s")
	b.ReportMetric(float64(b.N*readers)/el, "deliveries/s")
}
