package metrics_test

import (
	"fmt"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"

	"ginws.dev/ginws"
	"ginws.dev/ginws/metrics"
)

// Register the collector on the app's own registry; serve it with promhttp.HandlerFor.
func ExampleNewCollector() {
	ws := ginws.New(ginws.Config{Logger: slog.New(slog.DiscardHandler)})
	reg := prometheus.NewRegistry()
	reg.MustRegister(metrics.NewCollector(metrics.Sources{Server: ws}))

	families, err := reg.Gather()
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, f := range families {
		if f.GetName() == "ginws_connections" {
			fmt.Println(f.GetName(), f.GetMetric()[0].GetGauge().GetValue())
		}
	}
	// Output: ginws_connections 0
}
