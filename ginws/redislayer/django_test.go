package redislayer_test

// Interop with Django Channels: a ginws server on the Go Redis layer and a real Django Channels
// project under Daphne (channels_redis 4) share one Redis database, and therefore groups and
// channels. The Django side runs from ginws/redislayer/djangotest; both sides expose the same
// interop consumer (join a group, report the channel name, show every event, send on command), so
// each assertion reads the same way whichever side sent and whichever side received.
//
// Needs Redis on 127.0.0.1:6379 (DB 4 is flushed) and Debian's python3 with Django Channels:
//
//	apt-get install python3-django-channels python3-channels-redis python3-daphne
//	go test -race -run Django ./ginws/redislayer/

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/gin-gonic/gin"

	"ginws.dev/ginws"
	"ginws.dev/ginws/layer"
	"ginws.dev/ginws/redislayer"
	"ginws.dev/ginws/redislayer/djangotest"
)

func init() { gin.SetMode(gin.TestMode) } // before any test runs: no debug banner per server

// djangoRedisURL is the database the Django interop tests own.
const djangoRedisURL = "redis://127.0.0.1:6379/4"

// interop is one Go process (this test) and one Django process on one Redis.
type interop struct {
	layer  *redislayer.Layer
	goURL  string // ws:// base of the Go server
	daphne *djangotest.Daphne
}

func startInterop(t *testing.T) *interop {
	t.Helper()
	djangotest.FlushDB(t, djangoRedisURL)
	l, err := redislayer.New(redislayer.Config{Hosts: []string{djangoRedisURL}, Prefix: "asgi"})
	if err != nil {
		t.Fatalf("redislayer.New: %v", err)
	}
	t.Cleanup(func() {
		if err := l.Close(); err != nil {
			t.Errorf("layer close: %v", err)
		}
	})
	ws := ginws.New(ginws.Config{Layer: l, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	r := gin.New()
	r.GET("/ws/interop/:group/", ws.Mount(djangotest.NewConsumer))
	srv := httptest.NewServer(r)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := ws.Shutdown(ctx); err != nil {
			t.Errorf("ginws shutdown: %v", err)
		}
		srv.Close()
	})
	d := djangotest.Start(t, djangotest.Options{RedisHosts: []string{djangoRedisURL}, Prefix: "asgi"})
	return &interop{layer: l, goURL: "ws" + strings.TrimPrefix(srv.URL, "http"), daphne: d}
}

// goClient connects to the Go interop consumer of group.
func (e *interop) goClient(t *testing.T, ctx context.Context, group string) *djangotest.Client {
	t.Helper()
	return dialInterop(t, ctx, e.goURL+"/ws/interop/"+group+"/")
}

// djangoClient connects to the Django interop consumer of group.
func (e *interop) djangoClient(t *testing.T, ctx context.Context, group string) *djangotest.Client {
	t.Helper()
	return dialInterop(t, ctx, e.daphne.WSURL("/ws/interop/"+group+"/"))
}

func dialInterop(t *testing.T, ctx context.Context, url string) *djangotest.Client {
	t.Helper()
	c, err := djangotest.Dial(ctx, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// expectEvent reads the next event c's consumer shows and compares it with sent, in typed form.
func expectEvent(t *testing.T, ctx context.Context, who string, c *djangotest.Client, sent layer.Message) {
	t.Helper()
	got, err := c.Event(ctx)
	if err != nil {
		t.Fatalf("%s: %v", who, err)
	}
	expectSame(t, who, got, sent)
}

// expectSame compares a message that arrived (in typed form: see djangotest.Normalize) with the
// one sent, field by field, and stops the test when they differ.
func expectSame(t *testing.T, who string, got map[string]any, sent layer.Message) {
	t.Helper()
	want, err := djangotest.Normalize(sent)
	if err != nil {
		t.Fatal(err)
	}
	if reflect.DeepEqual(got, want) {
		return
	}
	wm := want.(map[string]any)
	for k, w := range wm {
		if g, ok := got[k]; !ok {
			t.Errorf("%s: field %q is missing (sent %#v)", who, k, w)
		} else if !reflect.DeepEqual(g, w) {
			t.Errorf("%s: field %q: got %s (%T), sent %s (%T)", who, k, typed(g), g, typed(w), w)
		}
	}
	for k, g := range got {
		if _, ok := wm[k]; !ok {
			t.Errorf("%s: unexpected field %q = %#v", who, k, g)
		}
	}
	t.FailNow()
}

// typed shows a value in typed JSON, where 3 and 3.0 differ.
func typed(v any) string {
	b, err := djangotest.MarshalTyped(v)
	if err != nil {
		return fmt.Sprintf("%#v", v)
	}
	if len(b) > 200 {
		return string(b[:200]) + "..."
	}
	return string(b)
}

// TestDjangoGroupsAreShared: Go and Django consumers of one group — two of each, so that each
// side's group send has to fan one Redis message out to several channels of the other process —
// all receive a group_send made from Django and one made from Go; members of another group, on
// either side, receive neither; a Django consumer that leaves stops receiving.
func TestDjangoGroupsAreShared(t *testing.T) {
	// Not parallel: it empties Redis DB 4, as the other Django interop tests of this package do.
	e := startInterop(t)
	ctx := testCtx(t)
	members := map[string]*djangotest.Client{
		"go-1":     e.goClient(t, ctx, "room"),
		"go-2":     e.goClient(t, ctx, "room"),
		"django-1": e.djangoClient(t, ctx, "room"),
		"django-2": e.djangoClient(t, ctx, "room"),
	}
	goOther, djangoOther := e.goClient(t, ctx, "room2"), e.djangoClient(t, ctx, "room2")

	fromDjango := layer.Message{"type": djangotest.EventType, "from": "django", "n": 1}
	if err := members["django-1"].GroupSend(ctx, "room", fromDjango); err != nil {
		t.Fatal(err)
	}
	for who, c := range members {
		expectEvent(t, ctx, who+" (group_send from Django)", c, fromDjango)
	}

	fromGo := layer.Message{"type": djangotest.EventType, "from": "go", "n": 2}
	if err := e.layer.GroupSend(ctx, "room", fromGo); err != nil {
		t.Fatal(err)
	}
	for who, c := range members {
		expectEvent(t, ctx, who+" (group_send from Go)", c, fromGo)
	}

	// A Go consumer's own group send (through the ginws connection API) reaches Django too.
	fromGoConsumer := layer.Message{"type": djangotest.EventType, "from": "go consumer", "n": 3}
	if err := members["go-2"].GroupSend(ctx, "room", fromGoConsumer); err != nil {
		t.Fatal(err)
	}
	for who, c := range members {
		expectEvent(t, ctx, who+" (group_send from a Go consumer)", c, fromGoConsumer)
	}

	for who, c := range map[string]*djangotest.Client{"go in room2": goOther, "django in room2": djangoOther} {
		if err := c.NoEvent(ctx, 300*time.Millisecond); err != nil {
			t.Errorf("%s: %v", who, err)
		}
	}

	// Leaving works across processes too: a Django consumer that discards the group stops
	// receiving what Go sends to it.
	if err := members["django-2"].GroupDiscard(ctx, "room"); err != nil {
		t.Fatal(err)
	}
	last := layer.Message{"type": djangotest.EventType, "from": "go", "n": 4}
	if err := e.layer.GroupSend(ctx, "room", last); err != nil {
		t.Fatal(err)
	}
	expectEvent(t, ctx, "django-1 (after django-2 left)", members["django-1"], last)
	if err := members["django-2"].NoEvent(ctx, 300*time.Millisecond); err != nil {
		t.Errorf("django-2 after group_discard: %v", err)
	}
}

// TestDjangoPointToPoint: a Go Layer.Send to a Django consumer's channel name reaches it, a Django
// channel_layer.send to a Go consumer's channel name reaches that one, and a Django send to an
// ordinary (not process-local) channel is received by Layer.Receive in Go.
func TestDjangoPointToPoint(t *testing.T) {
	// Not parallel: it empties Redis DB 4, as the other Django interop tests of this package do.
	e := startInterop(t)
	ctx := testCtx(t)
	goC := e.goClient(t, ctx, "p2p")
	djC := e.djangoClient(t, ctx, "p2p-django")
	djBystander := e.djangoClient(t, ctx, "p2p-django") // same Daphne process, same channel key

	toDjango := layer.Message{"type": "interop.direct", "to": djC.Channel}
	if err := e.layer.Send(ctx, djC.Channel, toDjango); err != nil {
		t.Fatal(err)
	}
	expectEvent(t, ctx, "Django consumer (Send from Go)", djC, toDjango)
	if err := djBystander.NoEvent(ctx, 300*time.Millisecond); err != nil {
		t.Errorf("another consumer of the same Daphne: %v", err)
	}

	toGo := layer.Message{"type": djangotest.EventType, "to": goC.Channel}
	if err := djC.Send(ctx, goC.Channel, toGo); err != nil {
		t.Fatal(err)
	}
	expectEvent(t, ctx, "Go consumer (send from Django)", goC, toGo)

	job := layer.Message{"type": "thumbnail.make", "id": 42}
	if err := djC.Send(ctx, "jobs.thumbnails", job); err != nil {
		t.Fatal(err)
	}
	got, err := e.layer.Receive(ctx, "jobs.thumbnails")
	if err != nil {
		t.Fatal(err)
	}
	if id, ok := got.Int("id"); !ok || id != 42 || got.Type() != "thumbnail.make" || len(got) != 2 {
		t.Fatalf("Layer.Receive of Django's send: %#v", got)
	}
}

// payload holds every kind of value a channel layer message may carry.
func payload(from string) layer.Message {
	return layer.Message{
		"type":        djangotest.EventType,
		"from":        from,
		"ascii":       "hello",
		"unicode":     "héllo wörld — 日本語 — 👋🏽",
		"empty":       "",
		"nul":         "a\x00b",
		"zero":        0,
		"small":       7,
		"negative":    -42,
		"over32":      int64(1) << 32,
		"big":         int64(1)<<40 + 3,
		"negbig":      -(int64(1) << 40),
		"maxint64":    int64(math.MaxInt64),
		"minint64":    int64(math.MinInt64),
		"float":       3.25,
		"wholefloat":  2.0,
		"negfloat":    -0.1,
		"tiny":        1e-300,
		"huge":        1.5e300,
		"yes":         true,
		"no":          false,
		"null":        nil,
		"list":        []any{1, "two", 3.0, nil, true, []any{}, map[string]any{}},
		"emptylist":   []any{},
		"nested":      map[string]any{"a": map[string]any{"b": []any{map[string]any{"c": "deep", "d": 1.5}}}, "n": -1},
		"bytes":       []byte{0, 1, 2, 0x7f, 0x80, 0xfe, 0xff},
		"emptybytes":  []byte{},
		"utf8bytes":   []byte("not a string"),
		"mixedkeys√":  "a non-ASCII key",
		"with space":  "a key with a space",
		"long string": strings.Repeat("x", 70000),
	}
}

// TestDjangoMessageFieldsSurvive: every kind of value crosses msgpack between ginws and
// channels_redis both ways, by group and point to point, and comes out with its kind intact — an
// int stays an int (also beyond 32 bits), a float stays a float (also 2.0), bytes stay bytes,
// null stays null.
func TestDjangoMessageFieldsSurvive(t *testing.T) {
	// Not parallel: it empties Redis DB 4, as the other Django interop tests of this package do.
	e := startInterop(t)
	ctx := testCtx(t)
	goC := e.goClient(t, ctx, "types")
	djC := e.djangoClient(t, ctx, "types")

	fromGo := payload("go")
	if err := e.layer.GroupSend(ctx, "types", fromGo); err != nil {
		t.Fatal(err)
	}
	expectEvent(t, ctx, "Django (group_send from Go)", djC, fromGo)
	expectEvent(t, ctx, "Go (group_send from Go)", goC, fromGo)

	fromDjango := payload("django")
	if err := djC.GroupSend(ctx, "types", fromDjango); err != nil {
		t.Fatal(err)
	}
	expectEvent(t, ctx, "Go (group_send from Django)", goC, fromDjango)
	expectEvent(t, ctx, "Django (group_send from Django)", djC, fromDjango)

	if err := e.layer.Send(ctx, djC.Channel, fromGo); err != nil {
		t.Fatal(err)
	}
	expectEvent(t, ctx, "Django (send from Go)", djC, fromGo)
	if err := djC.Send(ctx, goC.Channel, fromDjango); err != nil {
		t.Fatal(err)
	}
	expectEvent(t, ctx, "Go (send from Django)", goC, fromDjango)

	// The Go layer hands consumers the kinds its accessors expect.
	if err := djC.Send(ctx, "kinds.check", fromDjango); err != nil {
		t.Fatal(err)
	}
	got, err := e.layer.Receive(ctx, "kinds.check")
	if err != nil {
		t.Fatal(err)
	}
	if v, ok := got.Int("big"); !ok || v != int64(1)<<40+3 {
		t.Errorf(`Int("big") = %v, %v`, v, ok)
	}
	if v, ok := got.Int("minint64"); !ok || v != math.MinInt64 {
		t.Errorf(`Int("minint64") = %v, %v`, v, ok)
	}
	if v, ok := got["wholefloat"].(float64); !ok || v != 2.0 {
		t.Errorf(`"wholefloat" = %#v, want float64(2)`, got["wholefloat"])
	}
	if v, ok := got.Bytes("bytes"); !ok || string(v) != "\x00\x01\x02\x7f\x80\xfe\xff" {
		t.Errorf(`Bytes("bytes") = %q, %v`, v, ok)
	}
	if v, ok := got.Str("unicode"); !ok || v != "héllo wörld — 日本語 — 👋🏽" {
		t.Errorf(`String("unicode") = %q, %v`, v, ok)
	}
	if v, ok := got.Map("nested"); !ok || v["n"] == nil {
		t.Errorf(`Map("nested") = %#v, %v`, v, ok)
	}
	if v, ok := got.Slice("list"); !ok || len(v) != 7 {
		t.Errorf(`Slice("list") = %#v, %v`, v, ok)
	}
	if v, ok := got["null"]; !ok || v != nil {
		t.Errorf(`"null" = %#v, %v`, v, ok)
	}
}
