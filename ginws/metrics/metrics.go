// Package metrics exports a ginws Server's counters (and, when given, a Redis layer's and a Yjs
// server's) to Prometheus. It lives apart from ginws so that an app that does not use Prometheus
// does not compile client_golang.
//
//	reg := prometheus.NewRegistry()
//	reg.MustRegister(metrics.NewCollector(metrics.Sources{Server: ws, RedisLayer: lay}))
//	r.GET("/metrics", gin.WrapH(promhttp.HandlerFor(reg, promhttp.HandlerOpts{})))
//
// The collector reads the counters ginws keeps anyway (atomic counters, read with one Stats call
// per source at scrape time): metrics cost nothing per message. The Redis layer's call latency
// histograms are lock-free too: a few atomic adds per call to Redis. Names follow Prometheus'
// conventions: a "ginws_" prefix, "_total" on counters, bytes and seconds as units.
package metrics

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"ginws.dev/ginws"
	"ginws.dev/ginws/redislayer"
	"ginws.dev/ginws/yjs"
)

// Sources are what a collector reads. Server is required; the others are optional.
type Sources struct {
	Server     *ginws.Server
	RedisLayer *redislayer.Layer // the Server's layer, when it is a Redis layer
	Yjs        *yjs.Server
}

// NewCollector returns a collector of src's metrics, to register on the app's own registry. It
// panics with a *ginws.ConfigError without a Server.
func NewCollector(src Sources) prometheus.Collector {
	if src.Server == nil {
		panic(&ginws.ConfigError{Field: "metrics.Sources.Server", Value: nil, Rule: "required"})
	}
	return &collector{src: src}
}

type metric struct {
	desc *prometheus.Desc
	typ  prometheus.ValueType
}

func counter(name, help string, labels ...string) metric {
	return metric{prometheus.NewDesc(name, help, labels, nil), prometheus.CounterValue}
}

func gauge(name, help string, labels ...string) metric {
	return metric{prometheus.NewDesc(name, help, labels, nil), prometheus.GaugeValue}
}

var (
	connections       = gauge("ginws_connections", "WebSocket connections open now.")
	handshakes        = counter("ginws_handshakes_total", "WebSocket handshakes by result (accepted, refused) and HTTP status (101 when accepted; -1: the upgrade itself failed).", "result", "status")
	handshakesLimited = counter("ginws_handshakes_limited_total", "Handshakes refused with 429 by the connection caps and handshake rates (Config.Limits).")
	messagesIn        = counter("ginws_messages_received_total", "Messages received from clients.")
	bytesIn           = counter("ginws_received_bytes_total", "Payload bytes of the messages received from clients.")
	framesOut         = counter("ginws_frames_sent_total", "Frames written to clients.")
	writes            = counter("ginws_writes_total", "Write system calls to clients (frames_sent/writes is the write coalescing).")
	bytesOut          = counter("ginws_sent_bytes_total", "Bytes written to clients.")
	closes            = counter("ginws_closes_total", "Ended connections by the close code their Disconnect got (1006: the client vanished; codes 3000-4999 other than 3000 are grouped as 3xxx and 4xxx).", "code")
	slowClients       = counter("ginws_slow_client_closes_total", "Connections closed because their client could not keep up.")
	droppedEvents     = counter("ginws_dropped_events_total", "Layer events a connection's full queue could not take.")
	tooLarge          = counter("ginws_too_large_messages_total", "Messages dropped for one connection because they alone exceeded its outbound limit.")
	handlerErrors     = counter("ginws_handler_errors_total", "Handler errors and panics that closed a connection with 1011.")
	messagesLimited   = counter("ginws_messages_limited_total", "Client messages over the per-connection rate (Limits.Messages), closed or dropped.")

	redisSent          = counter("ginws_redis_layer_messages_sent_total", "Messages written to Redis.")
	redisGroupSends    = counter("ginws_redis_layer_group_sends_total", "Group sends that reached Redis.")
	redisReceived      = counter("ginws_redis_layer_messages_received_total", "Messages popped from Redis by this process.")
	redisDelivered     = counter("ginws_redis_layer_deliveries_total", "Deliveries to local subscribers and receivers.")
	redisDropped       = counter("ginws_redis_layer_dropped_total", "Group messages a full channel or a full local recipient missed.")
	redisExpired       = counter("ginws_redis_layer_expired_total", "Popped messages older than the layer's expiry, discarded.")
	redisBad           = counter("ginws_redis_layer_bad_messages_total", "Popped members that could not be decoded.")
	redisLoopErrors    = counter("ginws_redis_layer_receive_errors_total", "Failed receive-loop round trips.")
	redisReconnects    = counter("ginws_redis_layer_reconnects_total", "Times a receive loop resumed after failing.")
	redisDegradations  = counter("ginws_redis_layer_degradations_total", "Times a shard became degraded.")
	redisDegradedSecs  = counter("ginws_redis_layer_degraded_seconds_total", "Time the shards spent degraded, counted when a degradation ends.")
	redisDegradedNow   = gauge("ginws_redis_layer_degraded_shards", "Shards degraded now (group sends to them are refused).")
	redisRefused       = counter("ginws_redis_layer_group_sends_refused_total", "Group sends refused because their shard was degraded.")
	redisMemberships   = gauge("ginws_redis_layer_memberships", "Group memberships of this process's channels the layer keeps.")
	redisLocalBuffers  = gauge("ginws_redis_layer_local_buffers", "Process-local channels with messages waiting for Receive.")
	redisMembersReadd  = counter("ginws_redis_layer_memberships_readded_total", "Memberships written again after a fault.")
	redisMembersRefrsh = counter("ginws_redis_layer_memberships_refreshed_total", "Memberships rewritten before they expire.")
	redisCallErrors    = counter("ginws_redis_layer_call_errors_total", "Layer calls to Redis that failed, by operation (send, group_send, group_add, group_discard, receive, presence).", "op")
	redisReceiveLag    = gauge("ginws_redis_layer_receive_lag_seconds", "Age of the oldest message in a receive loop's last pop (the largest over the loops; 0 when idle): how far behind the receive loops are.")
	redisCallDuration  = prometheus.NewDesc("ginws_redis_layer_call_duration_seconds", "Duration of the layer's calls to Redis, by operation (send, group_send, group_add, group_discard, receive: a pop by Receive on a normal channel, presence: one call applying the coalesced tracks and untracks of a shard).", []string{"op"}, nil)

	yjsRooms       = gauge("ginws_yjs_rooms", "Yjs rooms loaded now.")
	yjsLoads       = counter("ginws_yjs_room_loads_total", "Yjs rooms loaded.")
	yjsUnloads     = counter("ginws_yjs_room_unloads_total", "Yjs rooms unloaded.")
	yjsApplied     = counter("ginws_yjs_updates_applied_total", "Yjs updates applied (from clients, the layer and the API).")
	yjsRefused     = counter("ginws_yjs_updates_refused_total", "Client updates refused (read-only, malformed, over a limit).")
	yjsSaves       = counter("ginws_yjs_store_saves_total", "Store appends.")
	yjsCompactions = counter("ginws_yjs_store_compactions_total", "Store compactions.")
	yjsLayerErrors = counter("ginws_yjs_layer_errors_total", "Failed channel layer calls (repaired by the next resync).")
	yjsStoreErrors = counter("ginws_yjs_store_errors_total", "Failed store calls (retried).")
	yjsDocBytes    = gauge("ginws_yjs_document_bytes", "Bytes of the loaded rooms' documents in this process (merged document plus the updates not merged yet).")
)

var serverMetrics = []metric{connections, handshakes, handshakesLimited, messagesIn, bytesIn, framesOut, writes,
	bytesOut, closes, slowClients, droppedEvents, tooLarge, handlerErrors, messagesLimited}

var redisMetrics = []metric{redisSent, redisGroupSends, redisReceived, redisDelivered, redisDropped, redisExpired,
	redisBad, redisLoopErrors, redisReconnects, redisDegradations, redisDegradedSecs, redisDegradedNow, redisRefused,
	redisMemberships, redisLocalBuffers, redisMembersReadd, redisMembersRefrsh, redisCallErrors, redisReceiveLag}

var yjsMetrics = []metric{yjsRooms, yjsLoads, yjsUnloads, yjsApplied, yjsRefused, yjsSaves, yjsCompactions,
	yjsLayerErrors, yjsStoreErrors, yjsDocBytes}

type collector struct{ src Sources }

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, m := range serverMetrics {
		ch <- m.desc
	}
	if c.src.RedisLayer != nil {
		for _, m := range redisMetrics {
			ch <- m.desc
		}
		ch <- redisCallDuration
	}
	if c.src.Yjs != nil {
		for _, m := range yjsMetrics {
			ch <- m.desc
		}
	}
}

func emit[N int | int64 | uint64 | float64](ch chan<- prometheus.Metric, m metric, v N, labels ...string) {
	ch <- prometheus.MustNewConstMetric(m.desc, m.typ, float64(v), labels...)
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	st := c.src.Server.Stats()
	emit(ch, connections, st.Open)
	emit(ch, handshakes, st.Accepted, "accepted", "101")
	for status, n := range st.RefusedByStatus {
		emit(ch, handshakes, n, "refused", strconv.Itoa(status))
	}
	emit(ch, handshakesLimited, st.HandshakesLimited)
	emit(ch, messagesIn, st.MessagesIn)
	emit(ch, bytesIn, st.BytesIn)
	emit(ch, framesOut, st.FramesWritten)
	emit(ch, writes, st.Writes)
	emit(ch, bytesOut, st.BytesOut)
	byLabel := map[string]uint64{}
	for code, n := range st.Closes {
		byLabel[closeLabel(code)] += n
	}
	for label, n := range byLabel {
		emit(ch, closes, n, label)
	}
	emit(ch, slowClients, st.SlowClients)
	emit(ch, droppedEvents, st.DroppedEvents)
	emit(ch, tooLarge, st.TooLarge)
	emit(ch, handlerErrors, st.HandlerErrors)
	emit(ch, messagesLimited, st.MessagesLimited)

	if l := c.src.RedisLayer; l != nil {
		rs := l.Stats()
		emit(ch, redisSent, rs.Sent)
		emit(ch, redisGroupSends, rs.GroupSends)
		emit(ch, redisReceived, rs.Received)
		emit(ch, redisDelivered, rs.Delivered)
		emit(ch, redisDropped, rs.Dropped)
		emit(ch, redisExpired, rs.Expired)
		emit(ch, redisBad, rs.BadMessages)
		emit(ch, redisLoopErrors, rs.LoopErrors)
		emit(ch, redisReconnects, rs.Reconnects)
		emit(ch, redisDegradations, rs.Degradations)
		emit(ch, redisDegradedSecs, rs.DegradedFor.Seconds())
		emit(ch, redisDegradedNow, rs.DegradedShards)
		emit(ch, redisRefused, rs.GroupSendsRefused)
		emit(ch, redisMemberships, rs.Memberships)
		emit(ch, redisLocalBuffers, rs.LocalBuffers)
		emit(ch, redisMembersReadd, rs.Readded)
		emit(ch, redisMembersRefrsh, rs.Refreshed)
		emit(ch, redisReceiveLag, rs.ReceiveLag.Seconds())
		for op, cs := range rs.Calls {
			emit(ch, redisCallErrors, cs.Errors, op)
			ch <- prometheus.MustNewConstHistogram(redisCallDuration, cs.Count, cs.Sum.Seconds(), cs.Buckets, op)
		}
	}
	if y := c.src.Yjs; y != nil {
		ys := y.Stats()
		emit(ch, yjsRooms, ys.Rooms)
		emit(ch, yjsLoads, ys.Loads)
		emit(ch, yjsUnloads, ys.Unloads)
		emit(ch, yjsApplied, ys.Applied)
		emit(ch, yjsRefused, ys.Refused)
		emit(ch, yjsSaves, ys.Saves)
		emit(ch, yjsCompactions, ys.Compactions)
		emit(ch, yjsLayerErrors, ys.LayerErrors)
		emit(ch, yjsStoreErrors, ys.StoreErrors)
		emit(ch, yjsDocBytes, ys.DocumentBytes)
	}
}

// closeLabel keeps the close-code label's values few: a client chooses the code it closes with.
func closeLabel(code int) string {
	switch {
	case code >= 1000 && code <= 1015, code == ginws.CloseTokenExpired:
		return strconv.Itoa(code)
	case code >= 3000 && code <= 3999:
		return "3xxx"
	case code >= 4000 && code <= 4999:
		return "4xxx"
	}
	return "other"
}
