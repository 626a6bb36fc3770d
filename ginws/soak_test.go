package ginws_test

import (
	"math"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/gorilla/websocket"

	"ginws.dev/ginws"
	"ginws.dev/ginws/layer"
	"ginws.dev/ginws/wstest"
)

// TestSoakConnectDisconnect: many connect/use/disconnect cycles leave the server's goroutines and
// heap where they started. (The load tool's churn mode does the same at full size against the
// chat example in its own process.)
func TestSoakConnectDisconnect(t *testing.T) {
	// Not parallel: it measures the whole test process's goroutines and heap.
	if testing.Short() {
		t.Skip("soak")
	}
	lay := layer.NewMemory(layer.MemoryConfig{})
	srv := ginws.New(ginws.Config{Layer: lay, Logger: discard()})
	r := gin.New()
	r.GET("/ws/:room", srv.Mount(chatRoom(nil)))
	ts := wstest.NewServer(t, r)
	url := ts.WSURL("/ws/soak")
	ctx := testCtx(t)
	defer srv.Shutdown(ctx)

	cycle := func() {
		c, _, err := websocket.DefaultDialer.DialContext(ctx, url, nil)
		if err != nil {
			t.Error(err)
			return
		}
		defer c.Close()
		if _, _, err := c.ReadMessage(); err != nil { // the join announcement
			t.Error(err)
			return
		}
		if err := c.WriteMessage(websocket.TextMessage, []byte("x")); err != nil {
			t.Error(err)
			return
		}
		for {
			_, b, err := c.ReadMessage()
			if err != nil {
				t.Error(err)
				return
			}
			if strings.HasPrefix(string(b), "chat:x") {
				break
			}
		}
		_ = c.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(1000, ""), time.Now().Add(time.Second))
		for {
			if _, _, err := c.ReadMessage(); err != nil {
				return
			}
		}
	}
	// settle waits for the connections to end and the idle pump workers to exit, then measures.
	// The workers' timers may fire late on a busy machine, so it also waits (10 s at most) for
	// the goroutines to come down to goroutinesAtMost.
	settle := func(goroutinesAtMost int) (int, uint64) {
		deadline := time.Now().Add(10 * time.Second)
		for srv.Stats().Open != 0 && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
		time.Sleep(ginws.PumpIdleTimeout + 50*time.Millisecond) // idle pump workers are gone by then
		for runtime.NumGoroutine() > goroutinesAtMost && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		runtime.GC()
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return runtime.NumGoroutine(), m.HeapInuse
	}
	// Warm up pools and maps, then take the baseline.
	for i := 0; i < 50; i++ {
		cycle()
	}
	g0, h0 := settle(math.MaxInt)
	const cycles, parallel = 2000, 10
	var wg sync.WaitGroup
	for w := 0; w < parallel; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < cycles/parallel; i++ {
				cycle()
			}
		}()
	}
	wg.Wait()
	g1, h1 := settle(g0 + 2)
	t.Logf("%d cycles: goroutines %d → %d, heap in use %d → %d bytes", cycles, g0, g1, h0, h1)
	if g1 > g0+2 {
		t.Errorf("goroutines grew from %d to %d", g0, g1)
	}
	if float64(h1) > float64(h0)*1.25+1<<20 {
		t.Errorf("heap in use grew from %d to %d bytes", h0, h1)
	}
	if st := lay.Stats(); st.Channels != 0 || st.Groups != 0 {
		t.Errorf("layer state left behind: %+v", st)
	}
	if st := srv.Stats(); st.Accepted != st.Disconnected || st.HandlerErrors != 0 {
		t.Errorf("stats: %+v", st)
	}
}
