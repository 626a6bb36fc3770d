package yjs_test

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"io"
	"net"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"

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
	var relayed atomic.Int64           // sync-update frames the clients got
	progress := make(chan struct{}, 1) // a token whenever relayed grows
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
		conns = append(conns, dialDrain(t, a, room, &relayed, progress, &wg))
	}
	// A bound on a hang only: the assertion is about allocations, and under -race on a busy
	// machine the 900 updates' round trips have taken longer than ctxT's 20 s.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	clock := map[string]uint64{}
	sender := func(room string, n int64) func() {
		return func() {
			want := relayed.Load() + n
			if err := a.ys.Update(ctx, room, keystroke(5, clock[room], 'k')); err != nil {
				t.Fatal(err)
			}
			clock[room]++
			// Wait on the readers' tokens, not in a Gosched loop that competes with them for
			// the CPU.
			for relayed.Load() < want {
				select {
				case <-progress:
				case <-ctx.Done():
					t.Fatalf("%d of the room's %d members got the update", relayed.Load()-want+n, n)
				}
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
// the sync-update messages and dropping a token into progress (if it is empty) after each, so
// that the client side allocates nothing while it runs.
func dialDrain(t *testing.T, a *app, path string, updates *atomic.Int64, progress chan<- struct{}, wg *sync.WaitGroup) net.Conn {
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
	// The room queues its sync step 1 as it registers a member, so once that frame is in, the
	// member gets every update relayed afterwards. Without this wait the first update could
	// reach the room before the last members had joined, and the test waited for them forever.
	h := new([10]byte) // one header buffer per reader: a local one would escape, once per frame
	if first, err := readYjsFrame(br, h); err != nil || first != [2]byte{byte(yproto.MsgSync), byte(yproto.SyncStep1)} {
		t.Fatalf("first frame %x, %v; want sync step 1", first, err)
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			kind, err := readYjsFrame(br, h)
			if err != nil {
				return
			}
			if kind == [2]byte{byte(yproto.MsgSync), byte(yproto.SyncUpdate)} {
				updates.Add(1)
				select {
				case progress <- struct{}{}:
				default:
				}
			}
		}
	}()
	return nc
}

// readYjsFrame reads one unmasked server frame from br and returns the first two bytes of its
// payload (the y-protocols message type and, for sync messages, the sync type), zero for a shorter
// one. It discards the rest; h holds the header, so that nothing is allocated per frame.
func readYjsFrame(br *bufio.Reader, h *[10]byte) (kind [2]byte, err error) {
	if _, err := io.ReadFull(br, h[:2]); err != nil {
		return kind, err
	}
	n := uint64(h[1] & 0x7f)
	switch n {
	case 126:
		if _, err := io.ReadFull(br, h[2:4]); err != nil {
			return kind, err
		}
		n = uint64(binary.BigEndian.Uint16(h[2:4]))
	case 127:
		if _, err := io.ReadFull(br, h[2:10]); err != nil {
			return kind, err
		}
		n = binary.BigEndian.Uint64(h[2:10])
	}
	if n >= 2 {
		p, err := br.Peek(2)
		if err != nil {
			return kind, err
		}
		kind = [2]byte{p[0], p[1]}
	}
	_, err = br.Discard(int(n))
	return kind, err
}
