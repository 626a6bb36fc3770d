// Package layertest is the conformance suite every ginws channel layer must pass, as slogtest is
// for slog handlers. It ports the scenarios of Django Channels' and channels_redis' layer tests:
// send/receive, FIFO order, capacity, process-local channels, groups, a full member not failing a
// group send, expiry of messages and of group memberships, and the naming rules — and what
// layer.Worker relies on: receivers competing for a named channel get each message once, and a
// canceled receive loses nothing — and, for layers with group history (layer.Resumer), positions in
// delivery order, resume from a position with no gap and no duplicate under concurrent sends, and
// gaps reported when the history was trimmed. StartWorker and WaitHandled test a Worker's handlers on any
// layer.
//
//	func TestConformance(t *testing.T) {
//		layertest.Run(t, func(t *testing.T, cfg layertest.Config) layer.Layer {
//			return mylayer.New(mylayer.Options{Capacity: cfg.Capacity, Expiry: cfg.Expiry, GroupExpiry: cfg.GroupExpiry})
//		})
//	}
//
// The factory must return a fresh, empty layer (or one flushed, with names no other test uses) and
// release it with t.Cleanup. Expiry tests wait a few seconds, since layers such as Redis count
// expiry in whole seconds.
package layertest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"ginws.dev/ginws/layer"
)

// Config is what a test asks of a new layer. Zero fields mean the layer's defaults.
type Config struct {
	Capacity    int
	Expiry      time.Duration
	GroupExpiry time.Duration
	// PresenceTTL is how soon a dead process's presence must be gone (RunPresence); layers of one
	// process ignore it.
	PresenceTTL time.Duration
	// History, for the history tests: the layer keeps the history of matching groups (and must
	// implement layer.Resumer and layer.Subscriber; the tests skip otherwise).
	History []layer.HistoryRule
}

// Factory makes a fresh layer for one test.
type Factory func(t *testing.T, cfg Config) layer.Layer

// Run runs the suite as subtests of t.
func Run(t *testing.T, newLayer Factory) {
	tests := []struct {
		name string
		fn   func(*testing.T, Factory)
	}{
		{"SendReceive", testSendReceive},
		{"FIFO", testFIFO},
		{"Capacity", testCapacity},
		{"ProcessLocal", testProcessLocal},
		{"NewChannelUnique", testNewChannelUnique},
		{"GroupsBasic", testGroupsBasic},
		{"GroupAddTwice", testGroupAddTwice},
		{"GroupDiscardUnknown", testGroupDiscardUnknown},
		{"GroupFullDoesNotFail", testGroupFullDoesNotFail},
		{"GroupSendEmpty", testGroupSendEmpty},
		{"ReceiveCancel", testReceiveCancel},
		{"ReceiveCancelLosesNothing", testReceiveCancelLosesNothing},
		{"CompetingReceivers", testCompetingReceivers},
		{"ConcurrentSend", testConcurrentSend},
		{"ValueTypes", testValueTypes},
		{"Flush", testFlush},
		{"Names", testNames},
		{"ExpirySingle", testExpirySingle},
		{"ExpiryUnread", testExpiryUnread},
		{"ExpiryMulti", testExpiryMulti},
		{"GroupExpiry", testGroupExpiry},
		{"Subscriber", testSubscriber},
		{"HistoryPositions", testHistoryPositions},
		{"HistoryResume", testHistoryResume},
		{"HistoryResumeConcurrent", testHistoryResumeConcurrent},
		{"HistoryGap", testHistoryGap},
		{"HistoryAge", testHistoryAge},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, newLayer) })
	}
}

const wait = 5 * time.Second

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

// unique returns a name no other test uses, so layers shared between tests (such as a Redis
// database) do not mix traffic.
func unique(t *testing.T, base string) string {
	return fmt.Sprintf("%s.%d.%d", base, time.Now().UnixNano()%1_000_000_000, seq.Add(1))
}

var seq atomic.Int64

func mustReceive(t *testing.T, l layer.Layer, channel string) layer.Message {
	t.Helper()
	c, cancel := context.WithTimeout(ctx(t), wait)
	defer cancel()
	m, err := l.Receive(c, channel)
	if err != nil {
		t.Fatalf("Receive(%q): %v", channel, err)
	}
	return m
}

// receiveNothing reports whether nothing arrives on channel within d.
func receiveNothing(t *testing.T, l layer.Layer, channel string, d time.Duration) {
	t.Helper()
	c, cancel := context.WithTimeout(ctx(t), d)
	defer cancel()
	m, err := l.Receive(c, channel)
	if err == nil {
		t.Fatalf("Receive(%q) = %v, want nothing", channel, m)
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Receive(%q) error = %v, want a context deadline", channel, err)
	}
}

func wantType(t *testing.T, m layer.Message, typ string) {
	t.Helper()
	if got := m.Type(); got != typ {
		t.Fatalf("message type = %q, want %q (message %v)", got, typ, m)
	}
}

func testSendReceive(t *testing.T, newLayer Factory) {
	l := newLayer(t, Config{Capacity: 3})
	ch := unique(t, "test-channel-1")
	if err := l.Send(ctx(t), ch, layer.Message{"type": "test.message", "text": "Ahoy-hoy!"}); err != nil {
		t.Fatal(err)
	}
	m := mustReceive(t, l, ch)
	wantType(t, m, "test.message")
	if s, _ := m.Str("text"); s != "Ahoy-hoy!" {
		t.Fatalf("text = %q", s)
	}
}

func testFIFO(t *testing.T, newLayer Factory) {
	l := newLayer(t, Config{Capacity: 3})
	ch := unique(t, "test-channel-3")
	for i := 1; i <= 3; i++ {
		if err := l.Send(ctx(t), ch, layer.Message{"type": fmt.Sprintf("message.%d", i)}); err != nil {
			t.Fatal(err)
		}
	}
	for i := 1; i <= 3; i++ {
		wantType(t, mustReceive(t, l, ch), fmt.Sprintf("message.%d", i))
	}
}

func testCapacity(t *testing.T, newLayer Factory) {
	l := newLayer(t, Config{Capacity: 3})
	ch := unique(t, "test-channel-cap")
	for i := 0; i < 3; i++ {
		if err := l.Send(ctx(t), ch, layer.Message{"type": "test.message"}); err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
	}
	err := l.Send(ctx(t), ch, layer.Message{"type": "test.message"})
	if !errors.Is(err, layer.ErrChannelFull) {
		t.Fatalf("4th Send to a channel of capacity 3: error = %v, want ErrChannelFull", err)
	}
	mustReceive(t, l, ch)
	if err := l.Send(ctx(t), ch, layer.Message{"type": "test.message"}); err != nil {
		t.Fatalf("Send after a receive made room: %v", err)
	}
}

func testProcessLocal(t *testing.T, newLayer Factory) {
	l := newLayer(t, Config{})
	ch, err := l.NewChannel(ctx(t), "")
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Send(ctx(t), ch, layer.Message{"type": "test.message", "text": "Local only please"}); err != nil {
		t.Fatal(err)
	}
	m := mustReceive(t, l, ch)
	if s, _ := m.Str("text"); s != "Local only please" {
		t.Fatalf("text = %q", s)
	}
}

func testNewChannelUnique(t *testing.T, newLayer Factory) {
	l := newLayer(t, Config{})
	seen := map[string]bool{}
	for i := 0; i < 100; i++ {
		ch, err := l.NewChannel(ctx(t), "")
		if err != nil {
			t.Fatal(err)
		}
		if err := layer.ValidateChannelName(ch); err != nil {
			t.Fatalf("NewChannel gave an invalid name: %v", err)
		}
		if !strings.HasPrefix(ch, "specific.") || !layer.IsProcessLocal(ch) {
			t.Fatalf("NewChannel(\"\") = %q, want specific.<...>!<...>", ch)
		}
		if seen[ch] {
			t.Fatalf("NewChannel returned %q twice", ch)
		}
		seen[ch] = true
	}
	ch, err := l.NewChannel(ctx(t), "custom-prefix")
	if err != nil || !strings.HasPrefix(ch, "custom-prefix") {
		t.Fatalf("NewChannel(custom-prefix) = %q, %v", ch, err)
	}
}

func testGroupsBasic(t *testing.T, newLayer Factory) {
	l := newLayer(t, Config{Capacity: 3})
	group := unique(t, "test-group")
	c1, c2, c3 := unique(t, "test-gr-chan-1"), unique(t, "test-gr-chan-2"), unique(t, "test-gr-chan-3")
	for _, ch := range []string{c1, c2, c3} {
		if err := l.GroupAdd(ctx(t), group, ch); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.GroupDiscard(ctx(t), group, c2); err != nil {
		t.Fatal(err)
	}
	if err := l.GroupSend(ctx(t), group, layer.Message{"type": "message.1"}); err != nil {
		t.Fatal(err)
	}
	wantType(t, mustReceive(t, l, c1), "message.1")
	wantType(t, mustReceive(t, l, c3), "message.1")
	receiveNothing(t, l, c2, 200*time.Millisecond)
}

func testGroupAddTwice(t *testing.T, newLayer Factory) {
	l := newLayer(t, Config{})
	group, ch := unique(t, "test-group-twice"), unique(t, "test-twice-chan")
	for i := 0; i < 2; i++ {
		if err := l.GroupAdd(ctx(t), group, ch); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.GroupSend(ctx(t), group, layer.Message{"type": "once"}); err != nil {
		t.Fatal(err)
	}
	wantType(t, mustReceive(t, l, ch), "once")
	receiveNothing(t, l, ch, 200*time.Millisecond)
}

func testGroupDiscardUnknown(t *testing.T, newLayer Factory) {
	l := newLayer(t, Config{})
	if err := l.GroupDiscard(ctx(t), unique(t, "no-such-group"), "no-such-channel"); err != nil {
		t.Fatalf("GroupDiscard of a non-member: %v", err)
	}
}

func testGroupFullDoesNotFail(t *testing.T, newLayer Factory) {
	l := newLayer(t, Config{Capacity: 3})
	group := unique(t, "test-group-full")
	full, other := unique(t, "test-gr-chan-full"), unique(t, "test-gr-chan-other")
	for _, ch := range []string{full, other} {
		if err := l.GroupAdd(ctx(t), group, ch); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < 3; i++ {
		if err := l.Send(ctx(t), full, layer.Message{"type": "filler"}); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.GroupSend(ctx(t), group, layer.Message{"type": "message.1"}); err != nil {
		t.Fatalf("GroupSend with a full member must not fail: %v", err)
	}
	wantType(t, mustReceive(t, l, other), "message.1")
	for i := 0; i < 3; i++ {
		wantType(t, mustReceive(t, l, full), "filler")
	}
	receiveNothing(t, l, full, 200*time.Millisecond)
}

func testGroupSendEmpty(t *testing.T, newLayer Factory) {
	l := newLayer(t, Config{})
	if err := l.GroupSend(ctx(t), unique(t, "empty-group"), layer.Message{"type": "nobody"}); err != nil {
		t.Fatalf("GroupSend to an empty group: %v", err)
	}
}

func testReceiveCancel(t *testing.T, newLayer Factory) {
	l := newLayer(t, Config{})
	ch := unique(t, "test-cancel")
	c, cancel := context.WithCancel(ctx(t))
	done := make(chan error, 1)
	go func() {
		_, err := l.Receive(c, ch)
		done <- err
	}()
	time.Sleep(50 * time.Millisecond)
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("canceled Receive returned %v, want context.Canceled", err)
		}
	case <-time.After(wait):
		t.Fatal("Receive did not return after its context was canceled")
	}
	// Nothing is lost by the canceled receive.
	if err := l.Send(ctx(t), ch, layer.Message{"type": "after.cancel"}); err != nil {
		t.Fatal(err)
	}
	wantType(t, mustReceive(t, l, ch), "after.cancel")
}

func testConcurrentSend(t *testing.T, newLayer Factory) {
	l := newLayer(t, Config{Capacity: 1000})
	ch := unique(t, "test-concurrent")
	const senders, each = 4, 50
	var wg sync.WaitGroup
	errs := make(chan error, senders*each)
	for s := 0; s < senders; s++ {
		wg.Add(1)
		go func(s int) {
			defer wg.Done()
			for i := 0; i < each; i++ {
				if err := l.Send(ctx(t), ch, layer.Message{"type": "n", "s": s, "i": i}); err != nil {
					errs <- err
				}
			}
		}(s)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	last := map[int64]int64{}
	for n := 0; n < senders*each; n++ {
		m := mustReceive(t, l, ch)
		s, _ := m.Int("s")
		i, _ := m.Int("i")
		if prev, ok := last[s]; ok && i != prev+1 {
			t.Fatalf("sender %d: got %d after %d: one sender's messages must stay in order", s, i, prev)
		}
		last[s] = i
	}
}

// testCompetingReceivers: several receivers on one named channel (workers in several processes)
// share its messages — each is received once.
func testCompetingReceivers(t *testing.T, newLayer Factory) {
	l := newLayer(t, Config{Capacity: 1000})
	ch := unique(t, "test-competing")
	const receivers, n = 4, 200
	c, cancel := context.WithCancel(ctx(t))
	defer cancel()
	got := make(chan int64, n*2)
	counts := make([]int, receivers)
	var wg sync.WaitGroup
	for r := range receivers {
		wg.Go(func() {
			for {
				m, err := l.Receive(c, ch)
				if err != nil {
					return
				}
				i, _ := m.Int("i")
				counts[r]++
				got <- i
			}
		})
	}
	for i := range n {
		if err := l.Send(ctx(t), ch, layer.Message{"type": "job", "i": i}); err != nil {
			t.Fatal(err)
		}
	}
	seen := make(map[int64]bool, n)
	timeout := time.After(wait)
	for len(seen) < n {
		select {
		case i := <-got:
			if seen[i] {
				t.Fatalf("message %d received twice", i)
			}
			seen[i] = true
		case <-timeout:
			t.Fatalf("%d of %d messages received", len(seen), n)
		}
	}
	cancel()
	wg.Wait()
	close(got)
	for i := range got {
		t.Fatalf("message %d received twice", i)
	}
	t.Logf("messages per receiver: %v", counts)
}

// testReceiveCancelLosesNothing: receives whose context ends while messages arrive — as a worker's
// when it stops — hand back nothing they took: every message is received once in the end.
func testReceiveCancelLosesNothing(t *testing.T, newLayer Factory) {
	l := newLayer(t, Config{Capacity: 1000})
	ch := unique(t, "test-cancel-keeps")
	const n = 100
	seen := make(map[int64]bool, n)
	take := func(m layer.Message) {
		i, _ := m.Int("i")
		if seen[i] {
			t.Fatalf("message %d received twice", i)
		}
		seen[i] = true
	}
	sent := make(chan error, 1)
	go func() {
		for i := range n {
			if err := l.Send(ctx(t), ch, layer.Message{"type": "job", "i": i}); err != nil {
				sent <- err
				return
			}
			if i%10 == 0 {
				time.Sleep(time.Millisecond)
			}
		}
		sent <- nil
	}()
	canceled := 0
	for k := 0; len(seen) < n && k < 20*n; k++ {
		// Deadlines from nothing to 2 ms: some end before the receive starts, some while it waits,
		// some just as it takes a message.
		c, cancel := context.WithTimeout(ctx(t), time.Duration(k%5)*500*time.Microsecond)
		m, err := l.Receive(c, ch)
		cancel()
		if err != nil {
			canceled++
			continue
		}
		take(m)
	}
	if err := <-sent; err != nil {
		t.Fatal(err)
	}
	for len(seen) < n {
		c, cancel := context.WithTimeout(ctx(t), 2*time.Second)
		m, err := l.Receive(c, ch)
		cancel()
		if err != nil {
			t.Fatalf("%d of %d messages received after %d canceled receives: the others were lost (%v)", len(seen), n, canceled, err)
		}
		take(m)
	}
	receiveNothing(t, l, ch, 100*time.Millisecond)
	t.Logf("%d canceled receives", canceled)
}

func testValueTypes(t *testing.T, newLayer Factory) {
	l := newLayer(t, Config{})
	ch := unique(t, "test-values")
	sent := layer.Message{
		"type": "values", "s": "héllo", "i": 42, "neg": -7, "f": 1.5, "t": true, "n": nil,
		"b": []byte{0, 1, 2, 255}, "l": []any{"a", 1, false}, "m": map[string]any{"k": "v"},
	}
	if err := l.Send(ctx(t), ch, sent); err != nil {
		t.Fatal(err)
	}
	m := mustReceive(t, l, ch)
	if s, _ := m.Str("s"); s != "héllo" {
		t.Errorf("string = %q", s)
	}
	if i, ok := m.Int("i"); !ok || i != 42 {
		t.Errorf("int = %v (%T)", m["i"], m["i"])
	}
	if i, ok := m.Int("neg"); !ok || i != -7 {
		t.Errorf("negative int = %v (%T)", m["neg"], m["neg"])
	}
	if f, ok := m.Float("f"); !ok || f != 1.5 {
		t.Errorf("float = %v (%T)", m["f"], m["f"])
	}
	if b, ok := m.Bool("t"); !ok || !b {
		t.Errorf("bool = %v", m["t"])
	}
	if v, ok := m["n"]; !ok || v != nil {
		t.Errorf("null = %v, present %v", v, ok)
	}
	if b, ok := m.Bytes("b"); !ok || string(b) != "\x00\x01\x02\xff" {
		t.Errorf("bytes = %v (%T)", m["b"], m["b"])
	}
	if l, ok := m.Slice("l"); !ok || len(l) != 3 || l[0] != "a" {
		t.Errorf("list = %v (%T)", m["l"], m["l"])
	}
	if mm, ok := m.Map("m"); !ok || mm["k"] != "v" {
		t.Errorf("map = %v (%T)", m["m"], m["m"])
	}
	// The sender may reuse its map: the layer must not share it.
	sent["s"] = "changed"
	if err := l.Send(ctx(t), ch, layer.Message{"type": "second"}); err != nil {
		t.Fatal(err)
	}
	wantType(t, mustReceive(t, l, ch), "second")
	if s, _ := m.Str("s"); s != "héllo" {
		t.Errorf("a received message changed when the sender modified its map: %q", s)
	}
}

func testFlush(t *testing.T, newLayer Factory) {
	l := newLayer(t, Config{})
	ch, group := unique(t, "test-flush"), unique(t, "test-flush-group")
	if err := l.Send(ctx(t), ch, layer.Message{"type": "gone"}); err != nil {
		t.Fatal(err)
	}
	if err := l.GroupAdd(ctx(t), group, ch); err != nil {
		t.Fatal(err)
	}
	if err := l.Flush(ctx(t)); err != nil {
		t.Fatal(err)
	}
	if err := l.GroupSend(ctx(t), group, layer.Message{"type": "gone.too"}); err != nil {
		t.Fatal(err)
	}
	receiveNothing(t, l, ch, 200*time.Millisecond)
}

func testNames(t *testing.T, newLayer Factory) {
	l := newLayer(t, Config{})
	long := strings.Repeat("a", 100)
	bad := []string{"", "has space", "bäd", "semi;colon", long, "a!b!c", "!leading", "slash/name"}
	for _, name := range bad {
		if err := l.Send(ctx(t), name, layer.Message{"type": "x"}); !errors.Is(err, layer.ErrInvalidName) {
			t.Errorf("Send(%q) error = %v, want ErrInvalidName", name, err)
		}
		if err := l.GroupAdd(ctx(t), "good-group", name); !errors.Is(err, layer.ErrInvalidName) {
			t.Errorf("GroupAdd(good-group, %q) error = %v, want ErrInvalidName", name, err)
		}
		if err := l.GroupSend(ctx(t), name, layer.Message{"type": "x"}); !errors.Is(err, layer.ErrInvalidName) {
			t.Errorf("GroupSend(%q) error = %v, want ErrInvalidName", name, err)
		}
		c, cancel := context.WithTimeout(ctx(t), 100*time.Millisecond)
		if _, err := l.Receive(c, name); !errors.Is(err, layer.ErrInvalidName) {
			t.Errorf("Receive(%q) error = %v, want ErrInvalidName", name, err)
		}
		cancel()
	}
	if err := l.GroupAdd(ctx(t), "group!bang", "good-channel"); !errors.Is(err, layer.ErrInvalidName) {
		t.Errorf("a group name with '!' must be refused, got %v", err)
	}
	var ne *layer.NameError
	if err := l.Send(ctx(t), "has space", layer.Message{"type": "x"}); !errors.As(err, &ne) || ne.Rule == "" {
		t.Errorf("a bad name must give a *NameError naming the rule, got %v", err)
	}
	ok := unique(t, strings.Repeat("b", 80)) // 80 + suffix, still < 100
	if len(ok) >= 100 {
		ok = ok[:99]
	}
	if err := l.Send(ctx(t), ok, layer.Message{"type": "x"}); err != nil {
		t.Errorf("Send to a valid %d-character name: %v", len(ok), err)
	}
	mustReceive(t, l, ok)
}

// Expiry tests use a 1 s expiry and wait 2.5 s: layers may count expiry in whole seconds.

func testExpirySingle(t *testing.T, newLayer Factory) {
	l := newLayer(t, Config{Expiry: time.Second})
	ch := unique(t, "test-expiry-1")
	if err := l.Send(ctx(t), ch, layer.Message{"type": "message.1"}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2500 * time.Millisecond)
	receiveNothing(t, l, ch, 200*time.Millisecond)
}

func testExpiryUnread(t *testing.T, newLayer Factory) {
	l := newLayer(t, Config{Expiry: time.Second})
	c1, c2 := unique(t, "test-expiry-u1"), unique(t, "test-expiry-u2")
	if err := l.Send(ctx(t), c1, layer.Message{"type": "message.1"}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2500 * time.Millisecond)
	if err := l.Send(ctx(t), c2, layer.Message{"type": "message.2"}); err != nil {
		t.Fatal(err)
	}
	wantType(t, mustReceive(t, l, c2), "message.2")
	receiveNothing(t, l, c1, 200*time.Millisecond)
}

func testExpiryMulti(t *testing.T, newLayer Factory) {
	l := newLayer(t, Config{Expiry: time.Second})
	ch := unique(t, "test-expiry-m")
	for _, typ := range []string{"message.1", "message.2", "message.3"} {
		if err := l.Send(ctx(t), ch, layer.Message{"type": typ}); err != nil {
			t.Fatal(err)
		}
	}
	wantType(t, mustReceive(t, l, ch), "message.1")
	time.Sleep(2500 * time.Millisecond)
	if err := l.Send(ctx(t), ch, layer.Message{"type": "message.4"}); err != nil {
		t.Fatal(err)
	}
	wantType(t, mustReceive(t, l, ch), "message.4")
	receiveNothing(t, l, ch, 200*time.Millisecond)
}

func testGroupExpiry(t *testing.T, newLayer Factory) {
	l := newLayer(t, Config{GroupExpiry: time.Second})
	group, stale, fresh := unique(t, "test-gexp"), unique(t, "test-gexp-stale"), unique(t, "test-gexp-fresh")
	if err := l.GroupAdd(ctx(t), group, stale); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2500 * time.Millisecond)
	if err := l.GroupAdd(ctx(t), group, fresh); err != nil {
		t.Fatal(err)
	}
	if err := l.GroupSend(ctx(t), group, layer.Message{"type": "after.expiry"}); err != nil {
		t.Fatal(err)
	}
	wantType(t, mustReceive(t, l, fresh), "after.expiry")
	receiveNothing(t, l, stale, 200*time.Millisecond)
}

// testSubscriber checks the optional push interface, when the layer has it.
func testSubscriber(t *testing.T, newLayer Factory) {
	l := newLayer(t, Config{Capacity: 2})
	sub, ok := l.(layer.Subscriber)
	if !ok {
		t.Skip("the layer does not implement layer.Subscriber (connections poll it with Receive)")
	}
	ch, err := l.NewChannel(ctx(t), "")
	if err != nil {
		t.Fatal(err)
	}
	group := unique(t, "test-sub-group")
	got := make(chan *layer.Envelope, 16)
	accept := make(chan bool, 16)
	unsubscribe, err := sub.Subscribe(ch, func(e *layer.Envelope) error {
		select {
		case ok := <-accept:
			if !ok {
				return layer.ErrChannelFull
			}
		default:
		}
		got <- e
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	defer unsubscribe()
	if err := l.Send(ctx(t), ch, layer.Message{"type": "direct"}); err != nil {
		t.Fatal(err)
	}
	if err := l.GroupAdd(ctx(t), group, ch); err != nil {
		t.Fatal(err)
	}
	if err := l.GroupSend(ctx(t), group, layer.Message{"type": "grouped"}); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"direct", "grouped"} {
		select {
		case e := <-got:
			wantType(t, e.Message, want)
		case <-time.After(wait):
			t.Fatalf("subscriber did not get %q", want)
		}
	}
	accept <- false
	// A layer that delivers synchronously reports the refusal to Send; one that delivers from a
	// receive loop (Redis) cannot, and counts a drop instead.
	if err := l.Send(ctx(t), ch, layer.Message{"type": "refused"}); err != nil && !errors.Is(err, layer.ErrChannelFull) {
		t.Fatalf("Send when the subscriber is full: %v, want nil or ErrChannelFull", err)
	}
	accept <- false
	if err := l.GroupSend(ctx(t), group, layer.Message{"type": "dropped"}); err != nil {
		t.Fatalf("GroupSend when the subscriber is full must not fail: %v", err)
	}
	unsubscribe()
	if err := l.GroupDiscard(ctx(t), group, ch); err != nil {
		t.Fatal(err)
	}
	select {
	case e := <-got:
		t.Fatalf("subscriber got %v after refusing or unsubscribing", e.Message)
	case <-time.After(100 * time.Millisecond):
	}
}
