package redislayer

import (
	"fmt"
	"log/slog"
	"net/url"
	"time"

	"github.com/redis/rueidis"

	"ginws.dev/ginws/layer"
)

// Config configures a Layer. The zero value talks to redis://127.0.0.1:6379/0 with channels_redis'
// defaults, so a Go process and a Django process configured with the same hosts and prefix share
// channels and groups. A zero field means its default; New refuses negative numbers and durations,
// malformed ChannelCapacity rules and bad host URLs with a *layer.ConfigError naming the field.
type Config struct {
	// Hosts are Redis URLs, one per shard: "redis://[:password@]host:port/db" (rediss:// for TLS).
	// A shard behind Redis Sentinel is one URL that names its sentinels and the master set:
	//
	//	redis://[:password@]sentinel1:26379/db?addr=sentinel2:26379&addr=sentinel3:26379&master_set=mymaster
	//
	// The host and every addr are sentinels; password and db are the master's; the sentinels'
	// own AUTH, if any, goes in sentinel_username and sentinel_password. The layer asks the
	// sentinels for the master, follows +switch-master and re-checks every 5 s. The order matters:
	// every process sharing the layer (Go or Django) must list the same shards in the same order
	// (a channels_redis sentinel host, {"sentinels": [...], "master_name": "mymaster"}, is one
	// shard too). Optional. Default ["redis://127.0.0.1:6379/0"].
	Hosts []string
	// Prefix starts every Redis key, as channels_redis' "prefix". Optional. Default "asgi".
	Prefix string
	// Capacity is how many messages a channel holds before Send returns layer.ErrChannelFull: the
	// Redis key of a normal channel, the local queue of a process-local one (which is also what
	// ginws bounds a connection's pending events by). Optional. Default 100.
	Capacity int
	// ProcessCapacity is how many messages the Redis key shared by all process-local channels of
	// one process ("<Prefix>specific.<client>!") holds before sends to it fail (Send) or are
	// dropped (GroupSend). channels_redis applies Capacity to that key, which makes a busy process
	// with thousands of connections drop group messages as soon as its receive loop lags 100
	// messages behind; set ProcessCapacity equal to Capacity for channels_redis' exact behaviour.
	// Django senders apply their own capacity to this key. Optional. Default 10 000.
	ProcessCapacity int
	// ChannelCapacity overrides Capacity for normal channels whose name matches a pattern; the
	// first matching rule wins. Patterns use Go's path.Match syntax ('*', '?', '[...]', '\\'
	// escapes), not channels_redis' (which takes fnmatch globs or compiled regexes): '*' does not
	// match '/', and a Django process keeps applying its own rules when it sends. New refuses a
	// malformed pattern. The rules bound a normal channel's key and a process-local channel's local
	// queue, never the Redis key shared by all the process-local channels of a process, which
	// ProcessCapacity bounds. Optional.
	ChannelCapacity []layer.CapacityRule
	// Expiry is how long an unreceived message lives, counted in whole seconds as in
	// channels_redis. Optional. Default 60 s.
	Expiry time.Duration
	// GroupExpiry is how long a group membership lives after its last GroupAdd, in whole seconds.
	// Optional. Default 86 400 s.
	GroupExpiry time.Duration
	// PresenceTTL bounds how long a connection tracked for presence (PresenceAdd) outlives its
	// process when the process dies without untracking it (SIGKILL, a crash, a network cut): its
	// user has left — and the departure is announced — at most about 5/8 of PresenceTTL later.
	// Each process refreshes its tracked connections, and sweeps the groups it tracks in, every
	// PresenceTTL/8; a connection not refreshed for PresenceTTL/2 is taken for gone. At least 1 s.
	// Optional. Default 30 s.
	PresenceTTL time.Duration
	// PresenceLinger spaces this process's presence writes to one shard: the tracks and untracks
	// (PresenceAdd, PresenceDiscard) made while one is applied, or within PresenceLinger of its
	// start, are applied together in one script call, and their joins and leaves announced together
	// in one message per group. A lone call goes at once; a call of a storm waits at most about
	// PresenceLinger more. Optional. Default 10 ms.
	PresenceLinger time.Duration
	// History keeps the last messages of the groups whose name matches a rule, in Redis next to
	// the group, so that a connection can join from a position (GroupAddSince, layer.Resumer); the
	// first matching rule wins. Every process sending to such a group must have the same rules:
	// a Go process without them, and a Django process (channels_redis knows nothing of history),
	// send messages that are delivered live, without a position, and are not kept. Optional: by
	// default no group has history.
	History []layer.HistoryRule
	// Logger receives the receive loop's reports (Redis unreachable, resumed, undecodable
	// messages). Optional. Default slog.Default().
	Logger *slog.Logger

	// DialTimeout bounds one attempt to connect to a host. Optional. Default 2 s.
	DialTimeout time.Duration
	// CallTimeout bounds a layer call whose context has no deadline, so that a call cannot hang
	// forever on an unreachable Redis. Optional. Default 5 s.
	CallTimeout time.Duration
	// PollTimeout is how long one blocking pop (BZMPOP or BZPOPMIN) waits before it is issued
	// again. With several shards, a Receive on a normal channel waits at most 100 ms on one shard
	// before looking at the others. Optional. Default 1 s.
	PollTimeout time.Duration
	// MaxBackoff caps the wait between reconnection attempts of the receive loop, which starts at
	// 50 ms and doubles. Optional. Default 5 s.
	MaxBackoff time.Duration
	// ReceiveBatch is how many messages the receive loop pops per round trip when messages are
	// waiting. Optional. Default 256.
	ReceiveBatch int
	// ReceiveLinger is how long the receive loop waits, after handing over messages, before it pops
	// again. Under load the next messages then come in one batch, and a connection that gets several
	// writes them with one system call: on a busy 2-core machine 2 ms cut the CPU per delivery by
	// about 10 % and raised fan-out throughput by 10–20 %. A message that follows another within the
	// linger waits at most that long. Optional. Default 0 (pop again at once).
	ReceiveLinger time.Duration
}

// Defaults of the fields of Config that ginws does not define itself.
const (
	DefaultHost         = "redis://127.0.0.1:6379/0"
	DefaultPrefix       = "asgi"
	DefaultDialTimeout  = 2 * time.Second
	DefaultCallTimeout  = 5 * time.Second
	DefaultPollTimeout  = time.Second
	DefaultMaxBackoff   = 5 * time.Second
	DefaultReceiveBatch = 256
	DefaultPresenceTTL  = 30 * time.Second
	// DefaultPresenceLinger is the default of Config.PresenceLinger.
	DefaultPresenceLinger = 10 * time.Millisecond
	// DefaultProcessCapacity is the default of Config.ProcessCapacity.
	DefaultProcessCapacity = 10000
)

// withDefaults returns cfg with every zero field set to its default.
func (cfg Config) withDefaults() Config {
	if len(cfg.Hosts) == 0 {
		cfg.Hosts = []string{DefaultHost}
	}
	if cfg.Prefix == "" {
		cfg.Prefix = DefaultPrefix
	}
	if cfg.Capacity <= 0 {
		cfg.Capacity = layer.DefaultCapacity
	}
	if cfg.ProcessCapacity <= 0 {
		cfg.ProcessCapacity = DefaultProcessCapacity
	}
	if cfg.Expiry <= 0 {
		cfg.Expiry = layer.DefaultExpiry
	}
	if cfg.GroupExpiry <= 0 {
		cfg.GroupExpiry = layer.DefaultGroupExpiry
	}
	if cfg.PresenceTTL <= 0 {
		cfg.PresenceTTL = DefaultPresenceTTL
	}
	if cfg.PresenceLinger <= 0 {
		cfg.PresenceLinger = DefaultPresenceLinger
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.DialTimeout <= 0 {
		cfg.DialTimeout = DefaultDialTimeout
	}
	if cfg.CallTimeout <= 0 {
		cfg.CallTimeout = DefaultCallTimeout
	}
	if cfg.PollTimeout <= 0 {
		cfg.PollTimeout = DefaultPollTimeout
	}
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = DefaultMaxBackoff
	}
	if cfg.ReceiveBatch <= 0 {
		cfg.ReceiveBatch = DefaultReceiveBatch
	}
	cfg.ChannelCapacity = append([]layer.CapacityRule(nil), cfg.ChannelCapacity...)
	return cfg
}

// validate refuses invalid fields with a *layer.ConfigError.
func (cfg Config) validate() error {
	for _, f := range []struct {
		name string
		v    int64
	}{
		{"Capacity", int64(cfg.Capacity)}, {"ProcessCapacity", int64(cfg.ProcessCapacity)},
		{"ReceiveBatch", int64(cfg.ReceiveBatch)},
		{"Expiry", int64(cfg.Expiry)}, {"GroupExpiry", int64(cfg.GroupExpiry)},
		{"DialTimeout", int64(cfg.DialTimeout)}, {"CallTimeout", int64(cfg.CallTimeout)},
		{"PollTimeout", int64(cfg.PollTimeout)}, {"MaxBackoff", int64(cfg.MaxBackoff)},
		{"ReceiveLinger", int64(cfg.ReceiveLinger)}, {"PresenceTTL", int64(cfg.PresenceTTL)},
		{"PresenceLinger", int64(cfg.PresenceLinger)},
	} {
		if f.v < 0 {
			return &layer.ConfigError{Field: "redislayer.Config." + f.name, Value: f.v, Rule: "must not be negative (zero means the default)"}
		}
	}
	if cfg.PresenceTTL > 0 && cfg.PresenceTTL < time.Second {
		return &layer.ConfigError{Field: "redislayer.Config.PresenceTTL", Value: cfg.PresenceTTL, Rule: "must be at least 1s (zero means the default, 30s)"}
	}
	if _, err := layer.NewCapacities("redislayer.Config.ChannelCapacity", 1, cfg.ChannelCapacity); err != nil {
		return err
	}
	_, err := layer.NewHistories("redislayer.Config.History", cfg.History)
	return err
}

// clientOption turns one host URL into rueidis options: one connection per shard with automatic
// pipelining, no client-side caching (the layer reads nothing twice), and no failure when the host
// is down at start (the first calls fail instead and later ones reconnect). A URL with master_set
// makes a Sentinel client (rueidis.SentinelOption), which needs a sentinel to answer at start.
func (cfg Config) clientOption(host string) (rueidis.ClientOption, error) {
	opt, err := rueidis.ParseURL(host)
	if err != nil {
		return opt, &layer.ConfigError{Field: "redislayer.Config.Hosts", Value: fmt.Sprintf("%q", host), Rule: "must be a redis:// or rediss:// URL: " + err.Error()}
	}
	opt.DisableCache = true
	opt.ForceSingleClient = true
	opt.Dialer.Timeout = cfg.DialTimeout
	if opt.Sentinel.MasterSet != "" {
		u, _ := url.Parse(host) // parsed above
		q := u.Query()
		opt.Sentinel.Username = q.Get("sentinel_username")
		opt.Sentinel.Password = q.Get("sentinel_password")
		opt.Sentinel.Dialer.Timeout = cfg.DialTimeout
		// rueidis follows +switch-master; a missed event would pin it to a demoted master.
		opt.Sentinel.TopologyRefreshInterval = sentinelRefresh
	}
	return opt, nil
}

// sentinelRefresh is how often a Sentinel shard asks its sentinels who the master is, besides
// following their +switch-master events.
const sentinelRefresh = 5 * time.Second

// seconds rounds d up to whole seconds, at least 1: Redis expires keys in seconds.
func seconds(d time.Duration) int64 {
	s := int64((d + time.Second - 1) / time.Second)
	return max(s, 1)
}

// Capacity returns the capacity of channel: the first matching ChannelCapacity rule, or Capacity.
func (l *Layer) Capacity(channel string) int { return l.capacity.Of(channel) }

// keyCapacity is the capacity a send checks the channel's Redis key against.
func (l *Layer) keyCapacity(channel string) int {
	if layer.IsProcessLocal(channel) {
		return l.cfg.ProcessCapacity
	}
	return l.Capacity(channel)
}
