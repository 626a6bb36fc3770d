package ginws

import (
	sflate "compress/flate"
	"strings"
	"testing"
)

var benchNotification = []byte(`{"message":"{\"type\":\"notifications\",\"count\":5,\"items\":[` + strings.Repeat(`{\"id\":\"ntf_3a7f1c00\",\"kind\":\"comment\",\"title\":\"comment on #4100: Fix reconnect backoff\",\"url\":\"https://example.com/acme/app/pull/4100#issuecomment-188200311\",\"actor\":{\"id\":5120,\"login\":\"alice\",\"name\":\"Alice Martin\",\"avatar_url\":\"https://avatars.example.com/u/5120?v=4\"},\"created_at\":\"2026-11-30T10:00:00Z\",\"unread\":true},`, 5) + `]}","user":"alice"}`)

// BenchmarkDeflate is the cost of compressing one ~2 KB JSON notification (once per group message
// per process) and of inflating one (once per compressed client message).
func BenchmarkDeflate(b *testing.B) {
	for _, level := range []int{1, 6} {
		b.Run("compress-level"+string(rune('0'+level)), func(b *testing.B) {
			b.SetBytes(int64(len(benchNotification)))
			var z []byte
			for b.Loop() {
				z, _ = appendDeflated(z[:0], benchNotification, level)
			}
			b.ReportMetric(float64(len(z))/float64(len(benchNotification)), "ratio")
		})
	}
	z, _ := appendDeflated(nil, benchNotification, 1)
	b.Run("inflate", func(b *testing.B) {
		b.SetBytes(int64(len(benchNotification)))
		for b.Loop() {
			if _, err := inflate(z, 1<<20); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkDeflateStdlib is the same work with compress/flate, for the choice of library (see
// deflate.go).
func BenchmarkDeflateStdlib(b *testing.B) {
	b.Run("compress-level1", func(b *testing.B) {
		b.SetBytes(int64(len(benchNotification)))
		var out sliceWriter
		w, _ := sflate.NewWriter(&out, 1)
		for b.Loop() {
			out.b = out.b[:0]
			w.Reset(&out)
			_, _ = w.Write(benchNotification)
			_ = w.Flush()
		}
		b.ReportMetric(float64(len(out.b)-4)/float64(len(benchNotification)), "ratio")
	})
	b.Run("inflate", func(b *testing.B) {
		z, _ := appendDeflated(nil, benchNotification, 1)
		b.SetBytes(int64(len(benchNotification)))
		src := &multiReader{}
		r := sflate.NewReader(src)
		out := make([]byte, 4096)
		for b.Loop() {
			*src = multiReader{a: z, b: inflateTail}
			_ = r.(sflate.Resetter).Reset(src, nil)
			for n := 0; ; {
				m, err := r.Read(out[n:])
				n += m
				if err != nil {
					break
				}
			}
		}
	})
}
