// Package layerflag turns a command-line flag into a channel layer, for the examples:
//
//	""  or "memory"                      an in-memory layer (one process)
//	"redis://host:port/db"               the Redis layer (channels_redis compatible)
//	"redis://a:6379/0,redis://b:6379/0"  the Redis layer with one shard per URL
//	"redis://host:6379/0?prefix=myapp"   ... with a key prefix other than "asgi"
//	"redis://host:6379/0?linger=2ms"     ... with redislayer.Config.ReceiveLinger
//	"redis://host:6379/0?capacity=1000"  ... with redislayer.Config.Capacity (a connection's queue of events)
package layerflag

import (
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strconv"
	"strings"
	"time"

	"ginws.dev/ginws/layer"
	"ginws.dev/ginws/redislayer"
)

// Usage describes the flag's values, for flag.String's usage text.
const Usage = `channel layer: "memory", or Redis URLs "redis://host:port/db[,redis://...][?prefix=asgi&linger=2ms&capacity=100]" (one per shard)`

// Parse returns the layer s names and the function that closes it. The groups matching history
// keep their history (layer.MemoryConfig.History, redislayer.Config.History). Each adjust function
// may change the configuration of a Redis layer (an example's own flags) before it is built.
func Parse(s string, log *slog.Logger, history []layer.HistoryRule, adjust ...func(*redislayer.Config)) (layer.Layer, func() error, error) {
	s = strings.TrimSpace(s)
	if s == "" || s == "memory" {
		l := layer.NewMemory(layer.MemoryConfig{History: history})
		return l, l.Close, nil
	}
	cfg := redislayer.Config{Logger: log, History: history}
	for _, part := range strings.Split(s, ",") {
		u, err := url.Parse(strings.TrimSpace(part))
		if err != nil {
			return nil, nil, fmt.Errorf("layer %q: %w", part, err)
		}
		if u.Scheme != "redis" && u.Scheme != "rediss" {
			return nil, nil, fmt.Errorf("layer %q: want \"memory\" or a redis:// URL", part)
		}
		q := u.Query()
		if p := q.Get("prefix"); p != "" {
			if cfg.Prefix != "" && cfg.Prefix != p {
				return nil, nil, errors.New("layer: the shards name different prefixes")
			}
			cfg.Prefix = p
		}
		q.Del("prefix")
		if v := q.Get("linger"); v != "" {
			d, err := time.ParseDuration(v)
			if err != nil || d < 0 {
				return nil, nil, fmt.Errorf("layer %q: linger: want a duration such as 2ms", part)
			}
			cfg.ReceiveLinger = d
		}
		q.Del("linger")
		if v := q.Get("capacity"); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 {
				return nil, nil, fmt.Errorf("layer %q: capacity: want a positive number of messages", part)
			}
			cfg.Capacity = n
		}
		q.Del("capacity")
		u.RawQuery = q.Encode()
		cfg.Hosts = append(cfg.Hosts, u.String())
	}
	for _, f := range adjust {
		f(&cfg)
	}
	l, err := redislayer.New(cfg)
	if err != nil {
		return nil, nil, err
	}
	return l, l.Close, nil
}
