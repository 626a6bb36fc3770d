package main

import (
	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"ginws.dev/ginws"
	"ginws.dev/ginws/layer"
	"ginws.dev/ginws/metrics"
	"ginws.dev/ginws/redislayer"
)

// metricsRoute serves Prometheus metrics at /metrics: the ginws server's, the Redis layer's when
// it is one, and the Go runtime's and the process's, on a registry of the app's own.
func metricsRoute(r *gin.Engine, ws *ginws.Server, lay layer.Layer) {
	reg := prometheus.NewRegistry()
	src := metrics.Sources{Server: ws}
	if rl, ok := lay.(*redislayer.Layer); ok {
		src.RedisLayer = rl
	}
	reg.MustRegister(metrics.NewCollector(src), collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	r.GET("/metrics", gin.WrapH(promhttp.HandlerFor(reg, promhttp.HandlerOpts{})))
}
