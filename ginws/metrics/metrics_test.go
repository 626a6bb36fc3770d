package metrics_test

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"go.uber.org/goleak"

	"ginws.dev/ginws"
	"ginws.dev/ginws/layer"
	"ginws.dev/ginws/metrics"
	"ginws.dev/ginws/redislayer"
	"ginws.dev/ginws/redislayer/redistest"
	"ginws.dev/ginws/wstest"
	"ginws.dev/ginws/yjs"
)

func TestMain(m *testing.M) {
	gin.SetMode(gin.TestMode)
	goleak.VerifyTestMain(m)
}

type echo struct{ ginws.WebsocketConsumer }

func (e *echo) Receive(ctx context.Context, f ginws.ClientMessage) error {
	if string(f.Data) == "bye" {
		return &ginws.CloseError{Code: 4001, Reason: "bye"}
	}
	return e.SendText(string(f.Data))
}

// scrape fetches /metrics and parses it as Prometheus' text format.
func scrape(t *testing.T, url string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get(url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("the /metrics text does not parse: %v", err)
	}
	return fams
}

// value returns the value of the family's sample whose labels include want.
func value(t *testing.T, fams map[string]*dto.MetricFamily, name string, want ...string) float64 {
	t.Helper()
	f := fams[name]
	if f == nil {
		t.Fatalf("no metric %s", name)
	}
next:
	for _, m := range f.Metric {
		labels := map[string]string{}
		for _, l := range m.Label {
			labels[l.GetName()] = l.GetValue()
		}
		for i := 0; i+1 < len(want); i += 2 {
			if labels[want[i]] != want[i+1] {
				continue next
			}
		}
		switch f.GetType() {
		case dto.MetricType_COUNTER:
			return m.GetCounter().GetValue()
		case dto.MetricType_GAUGE:
			return m.GetGauge().GetValue()
		}
	}
	t.Fatalf("no sample of %s with labels %v", name, want)
	return 0
}

func TestCollector(t *testing.T) {
	redistest.Need(t)
	prefix := fmt.Sprintf("metricstest%08x:", rand.Uint32())
	lay, err := redislayer.New(redislayer.Config{Hosts: []string{"redis://127.0.0.1:6379/11"}, Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = lay.Flush(ctx)
		lay.Close()
	}()
	ws := ginws.New(ginws.Config{Layer: lay, Logger: slog.New(slog.DiscardHandler)})
	ys := yjs.New(ws, yjs.Config{UnloadDelay: 50 * time.Millisecond})
	reg := prometheus.NewRegistry()
	reg.MustRegister(metrics.NewCollector(metrics.Sources{Server: ws, RedisLayer: lay, Yjs: ys}))
	r := gin.New()
	r.GET("/ws", ws.Mount(func() ginws.Consumer { return new(echo) }))
	r.GET("/yjs/*room", ws.Mount(ys.Consumer))
	r.GET("/metrics", gin.WrapH(promhttp.HandlerFor(reg, promhttp.HandlerOpts{})))
	ts := wstest.NewServer(t, r)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	defer func() {
		_ = ys.Close(ctx)
		_ = ws.Shutdown(ctx)
	}()

	open := ts.Communicator("/ws")
	open.MustConnect(ctx)
	if err := open.SendText(ctx, "hello"); err != nil {
		t.Fatal(err)
	}
	if _, err := open.ReceiveText(ctx); err != nil {
		t.Fatal(err)
	}
	leaving := ts.Communicator("/ws")
	leaving.MustConnect(ctx)
	if err := leaving.SendText(ctx, "bye"); err != nil {
		t.Fatal(err)
	}
	if code, _, _ := leaving.WaitClosed(ctx); code != 4001 {
		t.Fatalf("closed with %d", code)
	}
	if res, _ := ts.Communicator("/ws", wstest.Origin("http://elsewhere.example")).Connect(ctx); res.Status != http.StatusForbidden {
		t.Fatalf("cross-origin handshake: %d", res.Status)
	}
	for ws.Stats().Open != 1 { // the 4001 connection's Disconnect has run
		time.Sleep(5 * time.Millisecond)
	}

	fams := scrape(t, ts.URL)
	for _, c := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"ginws_connections", nil, 1},
		{"ginws_handshakes_total", []string{"result", "accepted", "status", "101"}, 2},
		{"ginws_handshakes_total", []string{"result", "refused", "status", "403"}, 1},
		{"ginws_messages_received_total", nil, 2},
		{"ginws_received_bytes_total", nil, 8},
		{"ginws_closes_total", []string{"code", "4xxx"}, 1},
		{"ginws_slow_client_closes_total", nil, 0},
		{"ginws_redis_layer_degraded_shards", nil, 0},
		{"ginws_yjs_rooms", nil, 0},
	} {
		if got := value(t, fams, c.name, c.labels...); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	if got := value(t, fams, "ginws_sent_bytes_total"); got < float64(len("hello")) {
		t.Errorf("ginws_sent_bytes_total = %v", got)
	}
	if got := value(t, fams, "ginws_redis_layer_memberships"); got < 0 {
		t.Errorf("memberships %v", got)
	}

	// Layer calls: timed by operation; a receive loop's pop gives the lag.
	ch, err := lay.NewChannel(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if err := lay.GroupAdd(ctx, "metricsgroup", ch); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if err := lay.GroupSend(ctx, "metricsgroup", layer.Message{"type": "m"}); err != nil {
			t.Fatal(err)
		}
	}
	for range 3 {
		if _, err := lay.Receive(ctx, ch); err != nil {
			t.Fatal(err)
		}
	}
	if err := lay.GroupDiscard(ctx, "metricsgroup", ch); err != nil {
		t.Fatal(err)
	}
	fams = scrape(t, ts.URL)
	for op, want := range map[string]uint64{"group_add": 1, "group_send": 3, "group_discard": 1} {
		h := histogram(t, fams, "ginws_redis_layer_call_duration_seconds", "op", op)
		if h.GetSampleCount() < want || h.GetSampleSum() <= 0 {
			t.Errorf("call_duration_seconds{op=%q}: count %d, sum %v; want count ≥ %d", op, h.GetSampleCount(), h.GetSampleSum(), want)
		}
		prev := uint64(0)
		for _, b := range h.GetBucket() {
			if b.GetCumulativeCount() < prev || b.GetCumulativeCount() > h.GetSampleCount() {
				t.Errorf("call_duration_seconds{op=%q}: bucket %v not cumulative", op, b)
			}
			prev = b.GetCumulativeCount()
		}
		if got := value(t, fams, "ginws_redis_layer_call_errors_total", "op", op); got != 0 {
			t.Errorf("call_errors_total{op=%q} = %v", op, got)
		}
	}
	if lag := value(t, fams, "ginws_redis_layer_receive_lag_seconds"); lag < 0 || lag > 60 {
		t.Errorf("receive lag %v s", lag)
	}

	// Yjs: the document's bytes while a room is loaded, none once it unloaded.
	editor := ts.Communicator("/yjs/metrics-doc")
	editor.MustConnect(ctx)
	if err := ys.Update(ctx, "metrics-doc", fxHello); err != nil {
		t.Fatal(err)
	}
	fams = scrape(t, ts.URL)
	if got := value(t, fams, "ginws_yjs_document_bytes"); got < float64(len(fxHello)) {
		t.Errorf("ginws_yjs_document_bytes = %v with a %d-byte update applied", got, len(fxHello))
	}
	if got := value(t, fams, "ginws_yjs_rooms"); got != 1 {
		t.Errorf("ginws_yjs_rooms = %v", got)
	}
	if err := editor.Disconnect(ctx); err != nil {
		t.Fatal(err)
	}
	for ys.Stats().Unloads == 0 {
		time.Sleep(10 * time.Millisecond)
	}
	fams = scrape(t, ts.URL)
	if got := value(t, fams, "ginws_yjs_document_bytes"); got != 0 {
		t.Errorf("ginws_yjs_document_bytes = %v after the room unloaded", got)
	}
}

// fxHello is a Yjs v1 update made by the yjs package: client 1 types "hello" into the text "t".
var fxHello = []byte{0x01, 0x01, 0x01, 0x00, 0x04, 0x01, 0x01, 0x74, 0x05, 0x68, 0x65, 0x6c, 0x6c, 0x6f, 0x00}

// histogram returns the family's histogram whose labels include want.
func histogram(t *testing.T, fams map[string]*dto.MetricFamily, name string, want ...string) *dto.Histogram {
	t.Helper()
	f := fams[name]
	if f == nil || f.GetType() != dto.MetricType_HISTOGRAM {
		t.Fatalf("no histogram %s", name)
	}
next:
	for _, m := range f.Metric {
		labels := map[string]string{}
		for _, l := range m.Label {
			labels[l.GetName()] = l.GetValue()
		}
		for i := 0; i+1 < len(want); i += 2 {
			if labels[want[i]] != want[i+1] {
				continue next
			}
		}
		return m.GetHistogram()
	}
	t.Fatalf("no sample of %s with labels %v", name, want)
	return nil
}
