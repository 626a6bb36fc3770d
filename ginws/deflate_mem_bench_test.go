package ginws_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gin-gonic/gin"

	"ginws.dev/ginws"
)

// BenchmarkIdleCompressedMemory reports the Go memory (heap in use plus stacks) an idle connection
// costs after one message each way — the client's message compressed, the server's echo
// compressed if it is over the threshold — without compression, with it (no context takeover:
// nothing kept), and with ContextTakeover (the server's compressor and the client's window kept),
// measured at once and after an idle spell of three ping intervals (the compressor given back).
// Clients are raw sockets that keep no flate state, the same in every mode, so the differences
// between modes are the server's. Run with -benchtime=1x; each run opens 100 connections.
func BenchmarkIdleCompressedMemory(b *testing.B) {
	const n = 100
	chat := `{"type":"chat.message","room":"lobby","user":"alice","text":"did anyone see the release notes for 0.9?"}`
	notify := `{"type":"notifications","items":[` + strings.Repeat(`{"id":"ntf_3a7f1c00","kind":"comment","title":"comment on #4100: Fix reconnect backoff","actor":{"login":"alice","name":"Alice Martin"},"unread":true},`, 12) + `{}]}`
	const ping = 50 * time.Millisecond
	takeover := []ginws.AcceptOption{ginws.WithCompression(ginws.Compression{ContextTakeover: true})}
	for _, mode := range []struct {
		name, offer string
		opts        []ginws.AcceptOption
		idle        time.Duration
	}{
		{"plain", "", nil, 0},
		{"compress", "permessage-deflate; client_max_window_bits", []ginws.AcceptOption{ginws.WithCompression(ginws.Compression{})}, 0},
		{"takeover", "permessage-deflate; client_max_window_bits", takeover, 0},
		{"takeover-idle", "permessage-deflate; client_max_window_bits", takeover, 3 * ping},
	} {
		for _, msg := range []struct{ name, text string }{{"chat", chat}, {"notify", notify}} {
			b.Run(fmt.Sprintf("%s/%s-%dB", mode.name, msg.name, len(msg.text)), func(b *testing.B) {
				for b.Loop() {
					cfg := ginws.Config{Logger: slog.New(slog.DiscardHandler)}
					if mode.idle > 0 {
						cfg.PingInterval, cfg.PingTimeout = ping, time.Minute
					}
					b.ReportMetric(idleCompressedConns(b, cfg, n, mode.offer, msg.text, mode.opts, mode.idle)/1024, "KB/conn")
				}
			})
		}
	}
}

func idleCompressedConns(b *testing.B, cfg ginws.Config, n int, offer, msg string, opts []ginws.AcceptOption, idle time.Duration) float64 {
	before := memNow()
	ws := ginws.New(cfg)
	r := gin.New()
	r.GET("/ws", ws.Mount(echoConsumer(opts...)))
	srv := httptest.NewServer(r)
	defer func() {
		_ = ws.Shutdown(context.Background())
		srv.Close()
	}()
	addr := strings.TrimPrefix(srv.URL, "http://")
	var z []byte
	if offer != "" {
		z = pmdDeflate(b, []byte(msg))
	}
	conns := make([]net.Conn, 0, n)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for range n {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			b.Fatal(err)
		}
		conns = append(conns, c)
		ext := ""
		if offer != "" {
			ext = "Sec-WebSocket-Extensions: " + offer + "\r\n"
		}
		fmt.Fprintf(c, "GET /ws HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nOrigin: %s\r\n"+
			"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n%s\r\n", addr, srv.URL, ext)
		br := bufio.NewReaderSize(c, 64)
		resp, err := http.ReadResponse(br, nil)
		if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
			b.Fatalf("handshake: %v %v", resp, err)
		}
		if offer == "" {
			_, _ = c.Write(frame(true, 0, 0x1, []byte(msg)))
		} else {
			_, _ = c.Write(frame(true, 0x40, 0x1, z))
		}
		// The echo: a header, and the payload skipped.
		var h [4]byte
		if _, err := io.ReadFull(br, h[:2]); err != nil {
			b.Fatal(err)
		}
		size := int(h[1] & 0x7f)
		if size == 126 {
			if _, err := io.ReadFull(br, h[2:4]); err != nil {
				b.Fatal(err)
			}
			size = int(h[2])<<8 | int(h[3])
		}
		if _, err := br.Discard(size); err != nil {
			b.Fatal(err)
		}
	}
	time.Sleep(idle)
	return float64(int64(memNow())-int64(before)) / float64(n)
}
