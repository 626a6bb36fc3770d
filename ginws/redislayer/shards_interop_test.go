package redislayer_test

import (
	"context"
	"encoding/json"
	"os/exec"
	"slices"
	"testing"
	"time"

	"ginws.dev/ginws/layer"
	"ginws.dev/ginws/redislayer"
	"ginws.dev/ginws/redislayer/djangotest"
	"ginws.dev/ginws/redislayer/redistest"
)

// receiveThenSendPy is a channels_redis 4 process on two shards: it receives n messages of one
// normal channel (each receive waits on the one shard it picked, round-robin), prints their "i" in
// the order received, then sends n messages to another normal channel.
const receiveThenSendPy = `
import asyncio, json, sys
from channels_redis.core import RedisChannelLayer

async def main(h1, h2, prefix, inbox, outbox, n):
    layer = RedisChannelLayer(hosts=[h1, h2], prefix=prefix)
    got = []
    for _ in range(n):
        m = await asyncio.wait_for(layer.receive(inbox), 10)
        got.append(m["i"])
    print(json.dumps(got), flush=True)
    for i in range(n):
        await layer.send(outbox, {"type": "back", "i": i})
    await layer.close_pools()

a = sys.argv[1:]
asyncio.run(main(a[0], a[1], a[2], a[3], a[4], int(a[5])))
`

// A channels_redis receiver on a two-shard normal channel gets every message a Go sender sent: Go
// spreads them round-robin as channels_redis does, so the receiver's shard is never left empty.
// And a Go Receive gets a channels_redis sender's round-robin messages in send order.
func TestTwoShardsWithChannelsRedis(t *testing.T) {
	t.Parallel()
	redistest.Need(t)
	if err := djangotest.Check(djangotest.DefaultPython); err != nil {
		djangotest.SkipOrFail(t, err.Error())
	}
	prefix := testPrefix()
	l := newLayer(t, redislayer.Config{Hosts: []string{db1, db2}, Prefix: prefix})
	const n = 6
	for i := 0; i < n; i++ {
		if err := l.Send(ctxT(t), "interop.inbox", layer.Message{"type": "go", "i": i}); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, djangotest.DefaultPython, "-c", receiveThenSendPy,
		db1, db2, prefix, "interop.inbox", "interop.outbox", "6")
	out, err := cmd.Output()
	if err != nil {
		var stderr string
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = string(ee.Stderr)
		}
		t.Fatalf("channels_redis receiver: %v (a receive waited on a shard with nothing?)\n%s", err, stderr)
	}
	var got []int
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("receiver printed %q: %v", out, err)
	}
	slices.Sort(got)
	if !slices.Equal(got, []int{0, 1, 2, 3, 4, 5}) {
		t.Fatalf("channels_redis received %v, want 0..5 (in some order)", got)
	}
	for i := 0; i < n; i++ {
		m, err := l.Receive(ctxT(t), "interop.outbox")
		if err != nil {
			t.Fatal(err)
		}
		if v, _ := m.Int("i"); v != int64(i) {
			t.Fatalf("Go receive %d got channels_redis message %d, want send order", i, v)
		}
	}
}
