package main

import (
	"context"
	"log/slog"
	"net/http"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"ginws.dev/ginws"
	"ginws.dev/ginws/wstest"
)

func startOpsApp(t *testing.T, o Options) *wstest.Server {
	t.Helper()
	o.SessionKey, o.Logger = []byte("0123456789abcdef0123456789abcdef"), slog.New(slog.DiscardHandler)
	app := NewApp(o)
	ts := wstest.NewServer(t, app.Handler())
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = app.WS.Shutdown(ctx)
	})
	return ts
}

// -metrics serves Prometheus' text format at /metrics, with the server's counters.
func TestMetricsPage(t *testing.T) {
	t.Parallel()
	ts := startOpsApp(t, Options{Metrics: true})
	ctx := ctxT(t)
	c := ts.Communicator("/ws/chat/lobby/", wstest.Jar(signIn(t, ts, "alice").Jar))
	c.MustConnect(ctx)
	if err := c.SendJSON(ctx, map[string]string{"message": "hi"}); err != nil {
		t.Fatal(err)
	}
	var got chatOut
	if err := receiveChat(ctx, c, &got); err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get(ts.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]float64{"ginws_connections": 1, "ginws_messages_received_total": 1} {
		f := fams[name]
		if f == nil || len(f.Metric) != 1 {
			t.Fatalf("%s: %v", name, f)
		}
		v := f.Metric[0].GetGauge().GetValue()
		if f.GetType() == dto.MetricType_COUNTER {
			v = f.Metric[0].GetCounter().GetValue()
		}
		if v != want {
			t.Errorf("%s = %v, want %v", name, v, want)
		}
	}
	if fams["go_goroutines"] == nil {
		t.Error("no Go runtime metrics")
	}
}

// The limits flags reach the server: a flooding client is closed with 1008, a user's extra socket
// gets 429, and a Host not in -hosts gets 400.
func TestChatLimits(t *testing.T) {
	t.Parallel()
	ts := startOpsApp(t, Options{
		Limits: ginws.Limits{Messages: ginws.Rate{PerSecond: 0.01, Burst: 3}, ConnsPerUser: 1},
		Hosts:  []string{"127.0.0.1"},
	})
	ctx := ctxT(t)
	jar := signIn(t, ts, "mallory").Jar
	flood := ts.Communicator("/ws/chat/lobby/", wstest.Jar(jar))
	flood.MustConnect(ctx)
	if res, err := ts.Communicator("/ws/chat/lobby/", wstest.Jar(jar)).Connect(ctx); err != nil || res.Status != http.StatusTooManyRequests {
		t.Fatalf("second socket of the user: %+v %v, want 429", res, err)
	}
	for range 10 {
		if err := flood.SendJSON(ctx, map[string]string{"message": "spam"}); err != nil {
			break
		}
	}
	code, reason, _ := flood.WaitClosed(ctx)
	if code != ginws.ClosePolicyViolation || reason != "message rate exceeded" {
		t.Fatalf("flooder closed with %d %q", code, reason)
	}
	evil := ts.Communicator("/ws/chat/lobby/", wstest.Jar(jar), wstest.Header("Host", "evil.example"), wstest.Origin("http://evil.example"))
	if res, err := evil.Connect(ctx); err != nil || res.Status != http.StatusBadRequest {
		t.Fatalf("Host: evil.example: %+v %v, want 400", res, err)
	}
}
