package yjs_test

import (
	"bufio"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"io"
	"net"
	"net/http"
	"net/url"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"

	"ginws.dev/ginws/yjs"
	"ginws.dev/ginws/yjs/yproto"
)

// An update is relayed at a cost per update, not per member: one frame, prepared once, queued
// for every member from the connections' pools and written from a pooled buffer. Measured as the
// growth of allocations per update between a room of 10 members and one of 50.
func TestRelayAllocatesPerUpdateNotPerMember(t *testing.T) {
	if testing.Short() {
		t.Skip("short mode")
	}
	const small, big = 10, 50
	a := newApp(t, nil, yjs.Config{UnloadDelay: -1})
	var relayed atomic.Int64 // sync-update frames the clients got
	var wg sync.WaitGroup
	var conns []net.Conn
	t.Cleanup(func() {
		for _, nc := range conns {
			nc.Close()
		}
		wg.Wait()
	})
	for i := range small + big {
		room := "/yjs/big"
		if i < small {
			room = "/yjs/small"
		}
		conns = append(conns, dialDrain(t, a, room, &relayed, &wg))
	}
	ctx := ctxT(t)
	clock := map[string]uint64{}
	sender := func(room string, n int64) func() {
		return func() {
			want := relayed.Load() + n
			if err := a.ys.Update(ctx, room, keystroke(5, clock[room], 'k')); err != nil {
				t.Fatal(err)
			}
			clock[room]++
			for relayed.Load() < want {
				if ctx.Err() != nil {
					t.Fatalf("%d of the room's %d members got the update", relayed.Load()-want+n, n)
				}
				runtime.Gosched()
			}
		}
	}
	toSmall, toBig := sender("small", small), sender("big", big)
	for range 100 { // warm the pools and the workers
		toSmall()
		toBig()
	}
	perSmall := testing.AllocsPerRun(200, toSmall)
	perBig := testing.AllocsPerRun(200, toBig)
	perMember := (perBig - perSmall) / (big - small)
	t.Logf("allocations per update: %.1f to %d members, %.1f to %d: %.3f per member (race detector: %v)",
		perSmall, small, perBig, big, perMember, raceEnabled)
	limit := 0.05
	if raceEnabled {
		limit = 0.75 // the race detector's sync.Pool drops a quarter of what it is given
	}
	if perMember > limit {
		t.Fatalf("%.3f allocations per member, want at most %.2f", perMember, limit)
	}
}

// dialDrain opens a Yjs socket by hand and reads it on a goroutine into a fixed buffer, counting
// the sync-update messages, so that the client side allocates nothing while it runs.
func dialDrain(t *testing.T, a *app, path string, updates *atomic.Int64, wg *sync.WaitGroup) net.Conn {
	t.Helper()
	u, err := url.Parse(a.http.WSURL(path))
	if err != nil {
		t.Fatal(err)
	}
	nc, err := net.Dial("tcp", u.Host)
	if err != nil {
		t.Fatal(err)
	}
	key := make([]byte, 16)
	_, _ = rand.Read(key)
	req := "GET " + u.RequestURI() + " HTTP/1.1\r\nHost: " + u.Host + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: " + base64.StdEncoding.EncodeToString(key) + "\r\nOrigin: " + a.http.URL + "\r\n\r\n"
	if _, err := io.WriteString(nc, req); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(nc)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("handshake: %v %v", resp, err)
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		var h [10]byte
		for {
			if _, err := io.ReadFull(br, h[:2]); err != nil {
				return
			}
			n := uint64(h[1] & 0x7f)
			switch n {
			case 126:
				if _, err := io.ReadFull(br, h[2:4]); err != nil {
					return
				}
				n = uint64(binary.BigEndian.Uint16(h[2:4]))
			case 127:
				if _, err := io.ReadFull(br, h[2:10]); err != nil {
					return
				}
				n = binary.BigEndian.Uint64(h[2:10])
			}
			if n >= 2 {
				p, err := br.Peek(2)
				if err != nil {
					return
				}
				if p[0] == byte(yproto.MsgSync) && p[1] == byte(yproto.SyncUpdate) {
					updates.Add(1)
				}
			}
			if _, err := br.Discard(int(n)); err != nil {
				return
			}
		}
	}()
	return nc
}
