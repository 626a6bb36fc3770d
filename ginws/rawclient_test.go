package ginws_test

import (
	"bufio"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// rawClient is a WebSocket client that writes frames byte by byte — masked or not, with any
// opcode, reserved bit or length, in one write or in pieces — and reads the server's frames as
// they are, for tests of how the server handles clients that break the rules.
type rawClient struct {
	t    testing.TB
	nc   net.Conn
	br   *bufio.Reader
	resp http.Header // the handshake response's headers
}

// dialRaw performs the opening handshake on wsURL by hand; extra headers are added as given.
func dialRaw(t testing.TB, wsURL string, extra ...string) *rawClient {
	t.Helper()
	u, err := url.Parse(wsURL)
	if err != nil {
		t.Fatal(err)
	}
	nc, err := net.Dial("tcp", u.Host)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	key := make([]byte, 16)
	_, _ = rand.Read(key)
	req := "GET " + u.RequestURI() + " HTTP/1.1\r\nHost: " + u.Host + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: " + base64.StdEncoding.EncodeToString(key) + "\r\n"
	for i := 0; i+1 < len(extra); i += 2 {
		req += extra[i] + ": " + extra[i+1] + "\r\n"
	}
	if _, err := io.WriteString(nc, req+"\r\n"); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(nc)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("handshake: HTTP %d", resp.StatusCode)
	}
	return &rawClient{t: t, nc: nc, br: br, resp: resp.Header}
}

// frame builds a masked client frame; rsv holds the RSV1-3 bits (0x70 mask).
func frame(fin bool, rsv, op byte, payload []byte) []byte {
	b0 := op | rsv
	if fin {
		b0 |= 0x80
	}
	var out []byte
	switch n := len(payload); {
	case n < 126:
		out = []byte{b0, 0x80 | byte(n)}
	case n <= 0xffff:
		out = binary.BigEndian.AppendUint16([]byte{b0, 0x80 | 126}, uint16(n))
	default:
		out = binary.BigEndian.AppendUint64([]byte{b0, 0x80 | 127}, uint64(n))
	}
	key := [4]byte{0x0b, 0xad, 0xf0, 0x0d}
	out = append(out, key[:]...)
	for i, c := range payload {
		out = append(out, c^key[i&3])
	}
	return out
}

func textFrame(s string) []byte { return frame(true, 0, 0x1, []byte(s)) }

func closeFrame(code int) []byte {
	return frame(true, 0, 0x8, binary.BigEndian.AppendUint16(nil, uint16(code)))
}

// write sends bytes as they are.
func (c *rawClient) write(b ...[]byte) {
	c.t.Helper()
	var all []byte
	for _, p := range b {
		all = append(all, p...)
	}
	if _, err := c.nc.Write(all); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

// serverFrame is one frame from the server.
type serverFrame struct {
	op      byte
	rsv     byte // the RSV1-3 bits (0x70 mask)
	payload []byte
}

// closeCode returns the code of a close frame (1005 when it carries none).
func (f serverFrame) closeCode() int {
	if len(f.payload) < 2 {
		return 1005
	}
	return int(binary.BigEndian.Uint16(f.payload))
}

// read reads the next frame within d.
func (c *rawClient) read(d time.Duration) (serverFrame, error) {
	_ = c.nc.SetReadDeadline(time.Now().Add(d))
	var h [2]byte
	if _, err := io.ReadFull(c.br, h[:]); err != nil {
		return serverFrame{}, err
	}
	if h[1]&0x80 != 0 {
		return serverFrame{}, errors.New("the server masked a frame")
	}
	n := uint64(h[1] & 0x7f)
	switch n {
	case 126:
		var b [2]byte
		if _, err := io.ReadFull(c.br, b[:]); err != nil {
			return serverFrame{}, err
		}
		n = uint64(binary.BigEndian.Uint16(b[:]))
	case 127:
		var b [8]byte
		if _, err := io.ReadFull(c.br, b[:]); err != nil {
			return serverFrame{}, err
		}
		n = binary.BigEndian.Uint64(b[:])
	}
	if n > 64<<20 {
		return serverFrame{}, fmt.Errorf("frame of %d bytes", n)
	}
	payload := make([]byte, n)
	if _, err := io.ReadFull(c.br, payload); err != nil {
		return serverFrame{}, err
	}
	return serverFrame{op: h[0] & 0x0f, rsv: h[0] & 0x70, payload: payload}, nil
}

// expectClosed checks that the server closes the TCP connection (EOF, not a reset) within d.
func (c *rawClient) expectClosed(d time.Duration) {
	c.t.Helper()
	_ = c.nc.SetReadDeadline(time.Now().Add(d))
	var b [1]byte
	n, err := c.br.Read(b[:])
	switch {
	case n > 0:
		c.t.Fatalf("expected the server to close the connection; it sent %x", b[:n])
	case errors.Is(err, io.EOF):
	case err != nil && strings.Contains(err.Error(), "reset"):
		c.t.Fatalf("the server reset the connection instead of closing it: %v", err)
	default:
		c.t.Fatalf("the server did not close the connection: %v", err)
	}
}

// drainInto reads everything the server sends into a fixed buffer, adding the byte count to n,
// until the socket fails, on a goroutine wg tracks: a client that costs the process no allocation
// and no frame parsing, for counting the server's work. After each read it signals progress, if
// not nil, without blocking, so that a sender can wait for the clients without spinning.
func (c *rawClient) drainInto(n *atomic.Int64, wg *sync.WaitGroup, progress chan<- struct{}) {
	wg.Go(func() {
		buf := make([]byte, 64<<10)
		for {
			k, err := c.br.Read(buf)
			n.Add(int64(k))
			if progress != nil {
				select {
				case progress <- struct{}{}:
				default:
				}
			}
			if err != nil {
				return
			}
		}
	})
}
