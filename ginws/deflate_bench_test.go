package ginws

import (
	sflate "compress/flate"
	"fmt"
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

// BenchmarkDeflateTakeover compresses a stream of chat lines (~100 bytes, a few users and phrases)
// and of ~1.9 KB notifications on one connection: each message on its own (no context takeover, level 1;
// a chat line stays under the default threshold and goes plain then) and through the connection's
// compressor with context takeover (level 7, and level 1 for comparison). ratio is wire bytes over
// plain bytes.
func BenchmarkDeflateTakeover(b *testing.B) {
	users := []string{"alice", "bob", "carol", "dave"}
	texts := []string{"hello everyone", "how is it going?", "fine thanks", "see you at the meeting later today", "lol", "did anyone see the release notes for 0.9?", "yes, compression landed"}
	var chat [][]byte
	for i := range 1000 {
		chat = append(chat, fmt.Appendf(nil, `{"type":"chat.message","room":"lobby","user":%q,"text":%q,"ts":%d}`, users[i%4], texts[i*7%len(texts)], 1700000000+i*13))
	}
	var notify [][]byte // ~1.9 KB each, no two alike
	for i := range 200 {
		m := []byte(`{"type":"notifications","items":[`)
		for j := range 8 {
			m = fmt.Appendf(m, `{"id":"ntf_%x","kind":%q,"title":"comment on #%d: %s","actor":{"id":%d,"login":%q},"created_at":"2026-11-30T10:%02d:%02dZ","unread":%v},`,
				i*977+j*31, []string{"comment", "review", "mention"}[j%3], 4000+i*7+j, texts[(i+j)%len(texts)], 5000+i%50, users[(i+j)%4], j, i%60, (i+j)%2 == 0)
		}
		notify = append(notify, append(m[:len(m)-1], "]}"...))
	}
	for _, s := range []struct {
		name string
		msgs [][]byte
	}{{"chat", chat}, {"notify", notify}} {
		b.Run(s.name+"/alone-level1", func(b *testing.B) {
			var plain, wire int
			var buf []byte
			for i := 0; b.Loop(); i++ {
				m := s.msgs[i%len(s.msgs)]
				z, ok := appendDeflated(buf[:0], m, 1)
				if !ok {
					z = m
				}
				plain, wire, buf = plain+len(m), wire+len(z), z
			}
			b.ReportMetric(float64(wire)/float64(plain), "ratio")
		})
		for _, level := range []int{1, takeoverDeflateLevel} {
			b.Run(fmt.Sprintf("%s/takeover-level%d", s.name, level), func(b *testing.B) {
				z := ctxDeflater{level: level}
				defer z.release()
				var plain, wire int
				var buf []byte
				for i := 0; b.Loop(); i++ {
					m := s.msgs[i%len(s.msgs)]
					buf = z.appendFrame(buf[:0], opText, m)
					plain, wire = plain+len(m), wire+len(buf)-2
				}
				b.ReportMetric(float64(wire)/float64(plain), "ratio")
			})
		}
	}
}
