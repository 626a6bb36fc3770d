package yjs_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"ginws.dev/ginws/yjs/ystore"

	"github.com/gin-gonic/gin"

	"ginws.dev/ginws"
	"ginws.dev/ginws/layer"
	"ginws.dev/ginws/wstest"
	"ginws.dev/ginws/yjs"
	"ginws.dev/ginws/yjs/yproto"
	"ginws.dev/ginws/yjs/yupdate"
)

// faultyStore is a real MemoryStore whose Append fails while fail is set (a store that is down),
// counting the failures, and whose Compact fails while failCompact is set.
type faultyStore struct {
	*ystore.Memory
	fail, failCompact      atomic.Bool
	failures, compactCalls atomic.Int32
	appends                atomic.Int32
}

var errStoreDown = errors.New("test store: down")

func (f *faultyStore) Append(ctx context.Context, room string, u []byte) (int, error) {
	if f.fail.Load() {
		f.failures.Add(1)
		return 0, errStoreDown
	}
	f.appends.Add(1)
	return f.Memory.Append(ctx, room, u)
}

func (f *faultyStore) Compact(ctx context.Context, room string, old [][]byte, merged []byte) error {
	f.compactCalls.Add(1)
	if f.failCompact.Load() {
		return errStoreDown
	}
	return f.Memory.Compact(ctx, room, old, merged)
}

// storedSV returns the state vector of everything the store holds for room.
func storedSV(t *testing.T, s ystore.Store, room string) []byte {
	t.Helper()
	log, err := s.Load(ctxT(t), room)
	if err != nil {
		t.Fatal(err)
	}
	if len(log) == 0 {
		return []byte{0}
	}
	m, err := yupdate.Merge(log...)
	if err != nil {
		t.Fatal(err)
	}
	return mustSV(t, m)
}

// A room whose saves fail stays loaded with its updates, retries, and unloads only once the
// store has them: nothing is lost across the unload and the reload.
func TestFailedSavesKeepTheRoomLoaded(t *testing.T) {
	t.Parallel()
	store := &faultyStore{Memory: ystore.NewMemory()}
	store.fail.Store(true)
	a := newApp(t, nil, yjs.Config{Store: store, UnloadDelay: -1, SaveDelay: -1})
	c, _ := a.dial(t, "/yjs/flaky")
	c.send(yproto.AppendSyncUpdate(nil, fxHello))
	c.send(yproto.AppendSyncStep1(nil, fxSVHello))
	c.next(yproto.MsgSync)
	if err := c.Disconnect(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the disconnect", func() bool { return a.ws.Stats().Disconnected == 1 })
	waitFor(t, "three failed saves", func() bool { return store.failures.Load() >= 3 })
	if rooms := a.ys.Rooms(); len(rooms) != 1 {
		t.Fatalf("the room unloaded with its update unsaved: rooms %q", rooms)
	}
	if st := a.ys.Stats(); st.Unloads != 0 || st.StoreErrors < 3 {
		t.Fatalf("stats while the store is down: %+v", st)
	}
	store.fail.Store(false) // the store comes back
	waitFor(t, "the room to save and unload", func() bool { return len(a.ys.Rooms()) == 0 })
	if sv := storedSV(t, store, "flaky"); !bytes.Equal(sv, fxSVHello) {
		t.Fatalf("stored state vector %x, want %x", sv, fxSVHello)
	}
	if _, sv := a.dial(t, "/yjs/flaky"); !bytes.Equal(sv, fxSVHello) {
		t.Fatalf("reloaded room's state vector %x, want %x", sv, fxSVHello)
	}
}

// While the store is down, more updates than the unsaved backlog holds are applied: the backlog is
// replaced by the whole document, which is saved once the store is back.
func TestUnsavedBacklogIsBounded(t *testing.T) {
	t.Parallel()
	store := &faultyStore{Memory: ystore.NewMemory()}
	store.fail.Store(true)
	a := newApp(t, nil, yjs.Config{Store: store, UnloadDelay: -1, SaveDelay: -1})
	c, _ := a.dial(t, "/yjs/backlog") // holds the room loaded
	const n = 1500                    // past the bound of 1024 unsaved updates
	for i := range n {
		if err := a.ys.Update(ctxT(t), "backlog", keystroke(7, uint64(i), 'a'+byte(i%26))); err != nil {
			t.Fatal(err)
		}
	}
	doc, err := a.ys.Document(ctxT(t), "backlog")
	if err != nil {
		t.Fatal(err)
	}
	want := mustSV(t, doc)
	store.fail.Store(false)
	_ = c.Disconnect(ctxT(t))
	waitFor(t, "the room to save and unload", func() bool { return len(a.ys.Rooms()) == 0 })
	if sv := storedSV(t, store, "backlog"); !bytes.Equal(sv, want) {
		t.Fatalf("stored state vector %x, want %x", sv, want)
	}
	if k := store.appends.Load(); k > 4 {
		t.Fatalf("%d appends once the store came back, want the whole document in a few", k)
	}
}

// Close reports the rooms it could not save when its context ends with the store still down.
func TestCloseReportsUnsavedRooms(t *testing.T) {
	t.Parallel()
	store := &faultyStore{Memory: ystore.NewMemory()}
	store.fail.Store(true)
	ws := ginws.New(ginws.Config{Logger: quietLogger()})
	ys := yjs.New(ws, yjs.Config{Store: store, SaveDelay: time.Hour, Logger: quietLogger()})
	r := gin.New()
	r.GET("/yjs/*room", ws.Mount(ys.Consumer))
	srv := wstest.NewServer(t, r)
	a := &app{ws: ws, ys: ys, http: srv}
	c, _ := a.dial(t, "/yjs/lost")
	c.send(yproto.AppendSyncUpdate(nil, fxHello))
	c.send(yproto.AppendSyncStep1(nil, fxSVHello))
	c.next(yproto.MsgSync)
	if err := ws.Shutdown(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	err := ys.Close(ctx)
	if !errors.Is(err, yjs.ErrUnsaved) || !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), `"lost"`) {
		t.Fatalf("Close with the store down: %v; want ErrUnsaved naming the room, and the deadline", err)
	}
	if store.failures.Load() < 2 {
		t.Fatalf("Close tried %d saves, want retries", store.failures.Load())
	}
	waitFor(t, "the room to stop", func() bool { return len(ys.Rooms()) == 0 })
}

// slowLayer is a real MemoryLayer on which a doc_update reaches a room's group at the moment the
// room leaves it (GroupDiscard): the message is in flight while the room unloads.
type slowLayer struct {
	*layer.Memory
	group  string
	update []byte
	once   sync.Once
}

func (l *slowLayer) GroupDiscard(ctx context.Context, group, channel string) error {
	if group == l.group {
		l.once.Do(func() {
			_ = l.Memory.GroupSend(ctx, group, layer.Message{"type": "doc_update", "update": l.update})
		})
	}
	return l.Memory.GroupDiscard(ctx, group, channel)
}

// A doc_update that arrives while the room unloads is applied and saved, not dropped: the next
// client gets it from the store.
func TestDocUpdateDuringUnloadIsSaved(t *testing.T) {
	t.Parallel()
	lay := &slowLayer{Memory: layer.NewMemory(layer.MemoryConfig{}), group: yjs.GroupName("late"), update: fxWorld}
	defer lay.Close()
	store := ystore.NewMemory()
	a := newApp(t, lay, yjs.Config{Store: store, UnloadDelay: -1})
	c, _ := a.dial(t, "/yjs/late")
	c.send(yproto.AppendSyncUpdate(nil, fxHello))
	c.send(yproto.AppendSyncStep1(nil, fxSVHello))
	c.next(yproto.MsgSync)
	_ = c.Disconnect(ctxT(t))
	waitFor(t, "the room to unload", func() bool { return len(a.ys.Rooms()) == 0 && a.ys.Stats().Unloads == 1 })
	want := mustSV(t, mustMerge(t, fxHello, fxWorld))
	if sv := storedSV(t, store, "late"); !bytes.Equal(sv, want) {
		t.Fatalf("stored state vector %x, want %x (the doc_update sent during the unload was lost)", sv, want)
	}
	if _, sv := a.dial(t, "/yjs/late"); !bytes.Equal(sv, want) {
		t.Fatalf("a new client's state vector %x, want %x", sv, want)
	}
}

// Two Servers on one layer with different namespaces keep rooms of the same name apart; a Server
// of the same namespace shares them.
func TestNamespacesKeepRoomsApart(t *testing.T) {
	t.Parallel()
	lay := layer.NewMemory(layer.MemoryConfig{})
	defer lay.Close()
	pub := newApp(t, lay, yjs.Config{Namespace: "public"})
	priv := newApp(t, lay, yjs.Config{Namespace: "private"})
	pub2 := newApp(t, lay, yjs.Config{Namespace: "public"})
	if yjs.GroupNameIn("", "x") != yjs.GroupName("x") || priv.ys.GroupName("x") != yjs.GroupNameIn("private", "x") ||
		pub.ys.GroupName("x") == priv.ys.GroupName("x") || yjs.GroupNameIn("a", "b") == yjs.GroupName("a\x00b") {
		t.Fatal("group names do not separate namespaces")
	}
	cpriv, _ := priv.dial(t, "/yjs/x")
	cpub2, _ := pub2.dial(t, "/yjs/x")
	cpub, _ := pub.dial(t, "/yjs/x")
	cpub.send(yproto.AppendSyncUpdate(nil, fxHello))
	if m := cpub2.next(yproto.MsgSync); !bytes.Equal(m.Payload, fxHello) { // same namespace: shared
		t.Fatalf("the other public server's client got %x", m.Payload)
	}
	// A doc_update to the private group reaches only the private room.
	if err := lay.GroupSend(ctxT(t), yjs.GroupNameIn("private", "x"), layer.Message{"type": "doc_update", "update": fxMapSet}); err != nil {
		t.Fatal(err)
	}
	if m := cpriv.next(yproto.MsgSync); !bytes.Equal(m.Payload, fxMapSet) {
		t.Fatalf("the private client got %x, want the private doc_update", m.Payload)
	}
	cpub.send(yproto.AppendSyncStep1(nil, []byte{0}))
	if m := cpub.next(yproto.MsgSync); !bytes.Equal(mustSV(t, m.Payload), fxSVHello) {
		t.Fatalf("the public document holds %x, want only the public edit", mustSV(t, m.Payload))
	}
	cpriv.quiet()
	doc, err := priv.ys.Document(ctxT(t), "x")
	if err != nil || !bytes.Equal(mustSV(t, doc), mustSV(t, fxMapSet)) {
		t.Fatalf("the private document's state vector %x (%v), want only the private update", mustSV(t, doc), err)
	}
}

// Read-only visitors of a seeded room store nothing; the seed is stored with the first change.
func TestInitialDocStoredOnlyWithAChange(t *testing.T) {
	t.Parallel()
	store := ystore.NewMemory()
	var calls atomic.Int32
	a := newApp(t, nil, yjs.Config{Store: store, UnloadDelay: -1, InitialDoc: func(ctx context.Context, room string) ([]byte, error) {
		calls.Add(1)
		return fxHello, nil
	}})
	for _, room := range []string{"probe-1", "probe-2", "doc"} {
		v, sv := a.dial(t, "/yjs/"+room+"?view=1")
		if !bytes.Equal(sv, fxSVHello) {
			t.Fatalf("seeded room %s: state vector %x", room, sv)
		}
		_ = v.Disconnect(ctxT(t))
	}
	waitFor(t, "the rooms to unload", func() bool { return a.ys.Stats().Unloads == 3 })
	for _, room := range []string{"probe-1", "probe-2", "doc"} {
		if n := store.Len(room); n != 0 {
			t.Fatalf("a read-only visit stored %d entries for %s", n, room)
		}
	}
	c, _ := a.dial(t, "/yjs/doc")
	c.send(yproto.AppendSyncUpdate(nil, fxWorld))
	c.send(yproto.AppendSyncStep1(nil, []byte{0}))
	c.next(yproto.MsgSync)
	_ = c.Disconnect(ctxT(t))
	waitFor(t, "the room to unload", func() bool { return a.ys.Stats().Unloads == 4 })
	want := mustSV(t, mustMerge(t, fxHello, fxWorld))
	if store.Len("doc") != 1 || !bytes.Equal(storedSV(t, store, "doc"), want) {
		t.Fatalf("after a change the store holds %d entries, state vector %x; want the seed and the change, %x",
			store.Len("doc"), storedSV(t, store, "doc"), want)
	}
	before := calls.Load()
	if _, sv := a.dial(t, "/yjs/doc"); !bytes.Equal(sv, want) || calls.Load() != before {
		t.Fatalf("reload: state vector %x, InitialDoc called again: %v", sv, calls.Load() != before)
	}
}

// A slow OnChange does not make the backlog grow without bound: past maxChangeBacklog the calls
// still due are replaced by one call with the whole document.
func TestOnChangeBacklogIsBounded(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	var mu sync.Mutex
	var calls int
	var last []byte
	a := newApp(t, nil, yjs.Config{OnChange: func(room string, u []byte) {
		<-release
		mu.Lock()
		calls++
		last = u
		mu.Unlock()
	}})
	c, _ := a.dial(t, "/yjs/slow")
	const n = 5000 // past the backlog bound of 4096
	for i := range n {
		c.send(yproto.AppendSyncUpdate(nil, keystroke(9, uint64(i), 'x')))
	}
	c.send(yproto.AppendSyncStep1(nil, []byte{0}))
	m := c.next(yproto.MsgSync) // every update applied
	close(release)
	want := mustSV(t, m.Payload)
	waitFor(t, "OnChange to catch up", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return last != nil && bytes.Equal(mustSV(t, last), want)
	})
	mu.Lock()
	defer mu.Unlock()
	if calls > n/10 {
		t.Fatalf("OnChange was called %d times for %d updates applied while it was blocked", calls, n)
	}
}

// After a failed compaction the room waits before the next one (100 ms, doubling), instead of
// retrying the whole load-merge-compact at every save; saves go on meanwhile, and once the store
// compacts again the log is merged.
func TestCompactionBacksOff(t *testing.T) {
	t.Parallel()
	store := &faultyStore{Memory: ystore.NewMemory()}
	store.failCompact.Store(true)
	a := newApp(t, nil, yjs.Config{Store: store, SaveDelay: -1, CompactAfter: 1})
	c, _ := a.dial(t, "/yjs/compact")
	const n = 40
	start := time.Now()
	for i := range n {
		c.send(yproto.AppendSyncUpdate(nil, keystroke(3, uint64(i), 'k')))
		c.send(yproto.AppendSyncStep1(nil, []byte{0}))
		c.next(yproto.MsgSync)
	}
	waitFor(t, "every update saved", func() bool { return bytes.Equal(storedSV(t, store, "compact"), []byte{1, 3, n}) })
	elapsed := time.Since(start)
	// The schedule allows one attempt, then one more after each of 100, 200, 400 ... ms.
	allowed, wait := 1, 100*time.Millisecond
	for sum := wait; sum <= elapsed; sum += wait {
		allowed++
		wait *= 2
	}
	attempts := int(store.compactCalls.Load())
	if attempts < 1 || attempts > allowed {
		t.Fatalf("%d compaction attempts in %v with the store failing them; the backoff allows 1..%d", attempts, elapsed, allowed)
	}
	store.failCompact.Store(false)
	clock := uint64(n)
	waitFor(t, "a compaction once the store accepts it", func() bool {
		c.send(yproto.AppendSyncUpdate(nil, keystroke(3, clock, 'k'))) // saves go on and trigger the retry
		clock++
		time.Sleep(50 * time.Millisecond)
		return store.Len("compact") <= 2
	})
}
