package redislayer_test

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/redis/rueidis"
	"github.com/vmihailenco/msgpack/v5"

	"ginws.dev/ginws/layer"
	"ginws.dev/ginws/redislayer"
)

// unpack reads a queued member the way channels_redis' deserialize does: drop 12 bytes, msgpack.
func unpack(t *testing.T, member string) map[string]any {
	t.Helper()
	if len(member) < 13 {
		t.Fatalf("member of %d bytes", len(member))
	}
	var m map[string]any
	if err := msgpack.Unmarshal([]byte(member[12:]), &m); err != nil {
		t.Fatalf("member is not msgpack after the 12-byte prefix: %v", err)
	}
	return m
}

func zscores(t *testing.T, c rueidis.Client, key string) []rueidis.ZScore {
	t.Helper()
	z, err := c.Do(ctxT(t), c.B().Zrange().Key(key).Min("0").Max("-1").Withscores().Build()).AsZScores()
	if err != nil {
		t.Fatal(err)
	}
	return z
}

func ttl(t *testing.T, c rueidis.Client, key string) int64 {
	t.Helper()
	n, err := c.Do(ctxT(t), c.B().Ttl().Key(key).Build()).AsInt64()
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func nearNow(t *testing.T, score float64) {
	t.Helper()
	now := float64(time.Now().UnixMicro()) / 1e6
	if score > now+1 || score < now-10 {
		t.Errorf("score %f is not the send time (now %f)", score, now)
	}
}

func TestWireSend(t *testing.T) {
	t.Parallel()
	prefix := testPrefix()
	l := newLayer(t, redislayer.Config{Prefix: prefix})
	raw := rawClient(t, db1)
	msg := layer.Message{"type": "test.message", "text": "hi", "bin": []byte{0, 1}, "n": 7}

	// A normal channel: key "<prefix><name>", no routing entry.
	if err := l.Send(ctxT(t), "worker.jobs", msg); err != nil {
		t.Fatal(err)
	}
	z := zscores(t, raw, prefix+"worker.jobs")
	if len(z) != 1 {
		t.Fatalf("key %s holds %d members, want 1", prefix+"worker.jobs", len(z))
	}
	nearNow(t, z[0].Score)
	if got := ttl(t, raw, prefix+"worker.jobs"); got <= 55 || got > 60 {
		t.Errorf("TTL = %d, want the 60 s expiry", got)
	}
	m := unpack(t, z[0].Member)
	if m["type"] != "test.message" || m["text"] != "hi" || !bytes.Equal(m["bin"].([]byte), []byte{0, 1}) {
		t.Errorf("decoded %#v", m)
	}
	if _, ok := m["__asgi_channel__"]; ok {
		t.Error("a normal channel's message must not carry __asgi_channel__")
	}
	// msgpack bin type (0xc4) for []byte, str (0xa_) for strings, as use_bin_type=True writes.
	if !strings.Contains(z[0].Member, "\xa3bin\xc4\x02\x00\x01") {
		t.Errorf("[]byte is not encoded as msgpack bin: %q", z[0].Member[12:])
	}

	// A process-local channel: key up to and including '!', routing entry with the full name.
	ch, err := l.NewChannel(ctxT(t), "")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(ch, "specific.") || len(ch) != len("specific.")+32+1+32 {
		t.Errorf("NewChannel = %q, want specific.<uuid hex>!<uuid hex>", ch)
	}
	if err := l.Send(ctxT(t), ch, msg); err != nil {
		t.Fatal(err)
	}
	key := prefix + layer.NonLocalName(ch)
	z = zscores(t, raw, key)
	if len(z) != 1 {
		t.Fatalf("key %s holds %d members, want 1", key, len(z))
	}
	if m := unpack(t, z[0].Member); m["__asgi_channel__"] != ch {
		t.Errorf("__asgi_channel__ = %#v, want %q", m["__asgi_channel__"], ch)
	}
}

func TestWireGroupAdd(t *testing.T) {
	t.Parallel()
	prefix := testPrefix()
	l := newLayer(t, redislayer.Config{Prefix: prefix})
	raw := rawClient(t, db1)
	if err := l.GroupAdd(ctxT(t), "chat_lobby", "specific.abc!def"); err != nil {
		t.Fatal(err)
	}
	key := prefix + ":group:chat_lobby"
	z := zscores(t, raw, key)
	if len(z) != 1 || z[0].Member != "specific.abc!def" {
		t.Fatalf("group key %s = %v", key, z)
	}
	nearNow(t, z[0].Score)
	if got := ttl(t, raw, key); got <= 86390 || got > 86400 {
		t.Errorf("group TTL = %d, want 86400", got)
	}
	if err := l.GroupDiscard(ctxT(t), "chat_lobby", "specific.abc!def"); err != nil {
		t.Fatal(err)
	}
	if z := zscores(t, raw, key); len(z) != 0 {
		t.Errorf("after GroupDiscard the group holds %v", z)
	}
}

// A group send writes one member per channel key: the channels of one process share one member
// that lists them all. Checked on both write paths (single script, and per shard).
func TestWireGroupSend(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		cfg  redislayer.Config
	}{
		{"OneScript", redislayer.Config{}},
		{"PerShard", redislayer.Config{ChannelCapacity: []layer.CapacityRule{{Pattern: "never.*", Capacity: 5}}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			prefix := testPrefix()
			tc.cfg.Prefix = prefix
			l := newLayer(t, tc.cfg)
			raw := rawClient(t, db1)
			members := []string{"specific.p1!a", "specific.p1!b", "specific.p2!c", "plain.worker"}
			for _, ch := range members {
				if err := l.GroupAdd(ctxT(t), "room", ch); err != nil {
					t.Fatal(err)
				}
			}
			if err := l.GroupSend(ctxT(t), "room", layer.Message{"type": "chat.message", "message": "hello"}); err != nil {
				t.Fatal(err)
			}
			want := map[string][]string{
				"specific.p1!": {"specific.p1!a", "specific.p1!b"},
				"specific.p2!": {"specific.p2!c"},
				"plain.worker": {"plain.worker"},
			}
			for keyName, names := range want {
				z := zscores(t, raw, prefix+keyName)
				if len(z) != 1 {
					t.Fatalf("key %s holds %d members, want 1", keyName, len(z))
				}
				nearNow(t, z[0].Score)
				if got := ttl(t, raw, prefix+keyName); got <= 55 || got > 60 {
					t.Errorf("%s TTL = %d", keyName, got)
				}
				m := unpack(t, z[0].Member)
				if m["type"] != "chat.message" || m["message"] != "hello" {
					t.Errorf("%s: message %#v", keyName, m)
				}
				got, _ := m["__asgi_channel__"].([]any)
				if len(got) != len(names) {
					t.Fatalf("%s: __asgi_channel__ = %#v, want %q", keyName, m["__asgi_channel__"], names)
				}
				for i := range names {
					if got[i] != names[i] {
						t.Errorf("%s: __asgi_channel__ = %#v, want %q", keyName, got, names)
					}
				}
			}
		})
	}
}

// A member written by channels_redis (bytes from Python's msgpack) into this process's key reaches
// every local channel it names.
func TestReceiveChannelsRedisMember(t *testing.T) {
	t.Parallel()
	prefix := testPrefix()
	l := newLayer(t, redislayer.Config{Prefix: prefix})
	raw := rawClient(t, db1)
	a, _ := l.NewChannel(ctxT(t), "")
	b, _ := l.NewChannel(ctxT(t), "")
	// {"type": "chat.message", "text": "hi", "__asgi_channel__": [a, b]} with use_bin_type=True.
	var member []byte
	member = append(member, bytes.Repeat([]byte{7}, 12)...)
	member = append(member, 0x83, 0xa4)
	member = append(member, "type"...)
	member = append(member, 0xac)
	member = append(member, "chat.message"...)
	member = append(member, 0xa4)
	member = append(member, "text"...)
	member = append(member, 0xa2, 'h', 'i', 0xb0)
	member = append(member, "__asgi_channel__"...)
	member = append(member, 0x92, 0xd9, byte(len(a)))
	member = append(member, a...)
	member = append(member, 0xd9, byte(len(b)))
	member = append(member, b...)
	key := prefix + layer.NonLocalName(a)
	if err := raw.Do(ctxT(t), raw.B().Zadd().Key(key).ScoreMember().ScoreMember(float64(time.Now().UnixMicro())/1e6, string(member)).Build()).Error(); err != nil {
		t.Fatal(err)
	}
	for _, ch := range []string{a, b} {
		m, err := l.Receive(ctxT(t), ch)
		if err != nil {
			t.Fatal(err)
		}
		if m.Type() != "chat.message" || m["text"] != "hi" {
			t.Errorf("%s got %#v", ch, m)
		}
		if _, ok := m["__asgi_channel__"]; ok {
			t.Errorf("the routing key reached the consumer: %#v", m)
		}
	}
}

// Receive on a normal channel puts back what a channels_redis receiver left in its $inflight
// backup, as channels_redis' receive does before popping.
func TestReceiveRestoresInflight(t *testing.T) {
	t.Parallel()
	prefix := testPrefix()
	l := newLayer(t, redislayer.Config{Prefix: prefix})
	raw := rawClient(t, db1)
	member := string(bytes.Repeat([]byte{1}, 12)) + "\x81\xa4type\xa8restored"
	key := prefix + "jobs"
	if err := raw.Do(ctxT(t), raw.B().Zadd().Key(key+"$inflight").ScoreMember().ScoreMember(float64(time.Now().Unix()), member).Build()).Error(); err != nil {
		t.Fatal(err)
	}
	m, err := l.Receive(ctxT(t), "jobs")
	if err != nil {
		t.Fatal(err)
	}
	if m.Type() != "restored" {
		t.Fatalf("got %#v", m)
	}
	if n, _ := raw.Do(ctxT(t), raw.B().Exists().Key(key+"$inflight").Build()).AsInt64(); n != 0 {
		t.Error("the backup key was not removed")
	}
}

// Two shards: a process-local channel's key lives on the shard of its non-local part — the key
// receivers watch — on send as on group send.
func TestShardPlacement(t *testing.T) {
	t.Parallel()
	prefix := testPrefix()
	l := newLayer(t, redislayer.Config{Prefix: prefix, Hosts: []string{db1, db2}})
	shards := []rueidis.Client{rawClient(t, db1), rawClient(t, db2)}
	// Find channels whose key hashes to each shard, by looking where Send put them.
	seen := map[int]bool{}
	for i := 0; i < 40 && len(seen) < 2; i++ {
		ch, _ := l.NewChannel(ctxT(t), "p"+string(rune('a'+i%26))+string(rune('a'+i/26)))
		if err := l.Send(ctxT(t), ch, layer.Message{"type": "x"}); err != nil {
			t.Fatal(err)
		}
		key := prefix + layer.NonLocalName(ch)
		var on []int
		for s, c := range shards {
			if len(zscores(t, c, key)) == 1 {
				on = append(on, s)
			}
		}
		if len(on) != 1 {
			t.Fatalf("key %s is on shards %v, want exactly one", key, on)
		}
		seen[on[0]] = true
		m, err := l.Receive(ctxT(t), ch)
		if err != nil || m.Type() != "x" {
			t.Fatalf("Receive(%s) = %v, %v", ch, m, err)
		}
	}
	if len(seen) != 2 {
		t.Errorf("40 channel prefixes all hashed to one shard: %v", seen)
	}
}
