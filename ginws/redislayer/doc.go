// Package redislayer is a ginws channel layer on Redis, wire-compatible with Django Channels'
// channels_redis 4.x (RedisChannelLayer): Go processes and Django processes that share a Redis and a
// prefix share channels and groups, so a Django view can group_send to Go WebSocket consumers and a
// Go handler can Send to a Django consumer's channel.
//
//	layer, err := redislayer.New(redislayer.Config{Hosts: []string{"redis://127.0.0.1:6379/0"}})
//	if err != nil { ... }
//	defer layer.Close()
//	srv := ginws.New(ginws.Config{Layer: layer})
//
// # Client
//
// The layer uses github.com/redis/rueidis, chosen for its automatic pipelining: concurrent group
// sends from many goroutines share round trips on one connection per shard without hand-written
// batching. Client-side caching is disabled (the layer never reads the same value twice). The
// operations that must be atomic (a send's capacity check and write, a group send's writes, a pop
// that restores a channels_redis backup) are Lua scripts, sent once and then called by SHA
// (EVALSHA); GroupAdd pipelines ZADD and EXPIRE, and a multi-shard send first counts the channel on
// the other shards.
//
// # Wire format (what channels_redis 4.0.0 reads and writes)
//
//   - A group is the sorted set "{prefix}:group:{group}": member = channel name, score = join time
//     (float seconds); GroupAdd refreshes EXPIRE GroupExpiry. GroupSend first drops memberships
//     older than GroupExpiry.
//   - A channel is the sorted set "{prefix}{name}" — no separator; for a process-local channel
//     ("specific.<client>!<id>") the key is the name up to and including '!', shared by all the
//     channels of one process. Member = 12 random bytes + msgpack(message) (str for strings, bin for
//     []byte, as use_bin_type=True); score = send time. Before adding, members older than Expiry are
//     removed (ZREMRANGEBYSCORE), the key's size is checked against the capacity (ZCOUNT), and the
//     key gets EXPIRE Expiry.
//   - A message to a process-local channel carries "__asgi_channel__": "<full name>". A group send
//     writes one member per distinct channel key, carrying "__asgi_channel__": [names...]; the
//     receiving process fans it out to its local channels.
//   - NewChannel returns "<prefix>.<uuid4 hex>!<uuid4 hex>"; the first part is fixed per Layer.
//   - Receiving a normal channel first moves back what a channels_redis receiver left in the
//     "{key}$inflight" backup, as channels_redis' receive does. This layer does not itself write
//     backups: its receive loop owns its process's keys alone, and a Receive whose context ends
//     (or whose Layer closes) after Redis popped a message puts that message back with its score,
//     and gives the key its expiry again.
//
// # Receiving
//
// One receive loop per process-local key and shard — not one per connection — pops up to
// ReceiveBatch messages per round trip with BZMPOP (waiting up to PollTimeout; on Redis before 7,
// BZPOPMIN then ZPOPMIN), decodes each message once and hands one
// *layer.Envelope to every local recipient: a Subscriber callback (what ginws connections use) or a
// bounded buffer read by Receive. All recipients of a group message in this process share that
// Envelope, so it is decoded once and JSON-encoded once per process. A full recipient misses the
// message and Stats().Dropped counts it. Close ends the loops at once (CLIENT UNBLOCK).
//
// All process-local channels of a process share one Redis key. channels_redis bounds that key by
// the ordinary capacity (100), so a process with many connections starts dropping group messages as
// soon as its receive loop lags 100 messages behind; this layer bounds it by ProcessCapacity
// (default 10 000) instead, and bounds each local channel's queue by Capacity. Set ProcessCapacity
// to Capacity for channels_redis' exact behaviour. Messages for a channel whose subscriber left
// are discarded for GroupExpiry after it left (the layer remembers up to 100 000 such channels).
//
// # Sharding
//
// With several Hosts, a key's shard is channels_redis' consistent hash of its name (CRC-32 & 0xFFF
// divided by 4096/len(Hosts)): groups by group name, channel keys by key name. channels_redis hashes
// a process-local channel's full name when sending but the non-local part when receiving — with
// several hosts some of its messages land on a shard nobody watches. This layer hashes the non-local
// part on both sides, and its receive loops watch this process's keys on every shard, so that
// messages from a channels_redis sender that hashed the full name still arrive.
//
// Normal (non-'!') channels are spread round-robin over the shards by every sender, as
// channels_redis does: a channels_redis receiver loops on one shard it picked, so a sender that
// used a single shard could leave it waiting forever. This layer bounds the channel as a whole:
// a send counts the channel's messages on the other shards against Capacity (not atomically, as
// channels_redis' own check; concurrent senders may overshoot a little), where channels_redis
// bounds each shard's key. A Go Receive takes the oldest of the shards' heads, so one sender's
// messages queued before the Receive looks come out in send order; order is not guaranteed for a
// message that lands on another shard while a Receive is looking or blocking (it waits up to
// 100 ms per shard), nor for channels_redis receivers, which see one shard at a time.
//
// # Faults
//
// New does not fail when Redis is down (a Sentinel shard is the exception: rueidis must learn the
// master's address from a sentinel at start). A call whose context has no deadline is bounded by
// CallTimeout. A Receive on a normal channel returns promptly when its context ends or the Layer
// closes (its blocking pop is woken with CLIENT UNBLOCK), but each Redis command in flight runs to
// its end, bounded by CallTimeout, so that a popped message is never dropped with its reply; a
// Receive whose context ends while Redis is unreachable can therefore take up to CallTimeout to
// return. A pop with no reply by then fails the Receive, but is still waited for in the
// background: Redis may run it later (after a pause), and what it pops is then put back; Close
// waits for such pops. The receive loops log the failure, retry with backoff (50 ms doubling to
// MaxBackoff) and resume when Redis is back; Stats counts LoopErrors and Reconnects. A receive
// loop's pop is never given up while its connection lives, since Redis may still run it and pop
// messages into its reply: one that gets no reply within PollTimeout+CallTimeout (a paused or
// stalled Redis) marks the shard degraded and keeps waiting, and its messages are delivered when
// Redis answers. A dead Redis breaks the connection at once; a vanished host fails TCP keepalive
// within about ten seconds.
//
// The process is the source of truth for its own memberships. channels_redis keeps groups only in
// Redis, so a Redis that loses its data leaves every open socket deaf. This layer also keeps, in
// memory, the memberships of its own process-local channels (GroupAdd and GroupDiscard of a
// channel made by its NewChannel), and one keeper goroutine per shard:
//
//   - probes the shard every second, or every GroupExpiry/4 if that is shorter (EXPIRE of this process's marker key
//     "<Prefix>:ginws:alive:<client>", TTL 60 s; the key's absence means Redis lost this process's
//     data — a restart without persistence, a failover to a replica that never had it, a flush —
//     even if no connection broke);
//   - marks the shard degraded on a failed probe, a failed receive-loop round trip or a lost
//     marker: it logs an error line when a degradation starts and another, with how long it
//     lasted, when it ends, and Stats counts Degradations, DegradedFor and DegradedShards;
//   - re-probes a degraded shard every 50 ms doubling to 250 ms; once Redis answers, re-adds every
//     live membership (ZADD with the time as score, EXPIRE GroupExpiry, pipelined), rewrites the
//     marker, and only then lets the receive loops pop again; after a data loss the shard stays
//     degraded one second more (the recovery grace), so that the other processes, which see the
//     same fault, have re-added their memberships before this one's group sends resume;
//   - rewrites, every GroupExpiry/4, the memberships written more than GroupExpiry/2 ago, so
//     that a live connection never leaves its groups by expiry.
//
// A tracked channel is live while it has a subscriber (every ginws connection has one) or is read
// with Receive (a Receive waits on it, or its last Receive or GroupAdd is less than GroupExpiry
// old: it is then written with that time as score, so it expires as in Channels). A channel whose
// subscriber left is forgotten, and so is one that is no longer live: what Redis holds of it
// expires GroupExpiry after its last write (plus up to a second: channels_redis' cutoff is in
// whole seconds), as a dead process's memberships do. Memberships of normal channels, and of
// other processes' channels, are not tracked: whichever process pops a normal channel, and any
// process (Go or Django) may discard it, so none can vouch for it; they live in Redis only, as in
// channels_redis. A GroupDiscard by another process of one of this process's channels is undone at
// the next resync or refresh.
//
// While a shard is degraded, GroupSend to its groups fails at once with an error wrapping
// ErrDegraded (the message is not sent), and Health reports it: a degraded layer refuses rather
// than delivering to part of a group in silence. Send is not refused: it fails by itself while
// Redis is unreachable, and a message it writes waits in Redis for its receiver.
//
// What a Redis fault loses. Messages are in Redis only between a send and the receiving process's
// pop (its receive loop pops within milliseconds unless it lags): a Redis that dies without
// persistence loses what its keys held then — the process keys' queued messages, normal channels'
// queues, channels_redis' "$inflight" backups — and a failover loses what the dead master had not
// yet replicated. The process-local key comes back empty (and is created again by the next send);
// messages already popped live in this process's memory and are delivered. Sends that fail during
// the fault are reported to their callers. See the README's "Delivery guarantees".
//
// # Presence
//
// The layer implements layer.Presence: who is in a group, across every process sharing the Redis.
// A group's presence is three keys on its shard, "{prefix}:ginws:pz:{group}" (channel → deadline),
// "…:ph:{group}" (channel → user and info, JSON) and "…:pu:{group}" (user → connections),
// changed only by Lua scripts, so that a user's first arrival and last departure are each seen by
// exactly one process, which announces it (presence.join, presence.leave) to the companion group
// layer.PresenceGroup(group). Deadlines use Redis' clock. Each process is the source of truth for
// the connections it tracks: its keeper refreshes them every PresenceTTL/8, sweeping the groups'
// dead entries as it goes, and tracks again what Redis lost — so a killed process's users leave
// within about 5/8 of PresenceTTL, and presence comes back after a Redis restart like memberships
// (without announcing the users again). channels_redis has no presence; Django processes neither
// read nor write these keys.
//
// A join/leave storm stays cheap for Redis: a process coalesces the PresenceAdd and
// PresenceDiscard calls of a shard made while one is applied, or within Config.PresenceLinger of
// its start, into one script call, and announces the call's changes in one message per group
// ("ginws.presence.batch" when there are several), which the receiving layer expands into the
// plain presence.join and presence.leave events before any receiver sees it. Presence events are
// never kept in a group's history.
//
// # History
//
// Groups matching a Config.History rule keep their last messages (layer.Resumer): a hash with the
// epoch and last offset and a stream of the kept messages on the group's shard (see
// scripts_history.go). The group send script assigns the next position, appends the message to
// the stream (trimmed by MAXLEN and, by Redis' time, MINID) and writes the members' copies with a
// "__ginws_pos__" entry, in one script, so every process key receives the group's messages in
// position order. GroupAddSince adds the membership and reads the history after a position in one
// script; live messages of that group reaching the channel meanwhile are held and delivered after
// the replay, without those it covered. A Redis that lost the hash gives the group a new epoch, and
// a resume from the old one reports a gap. channels_redis senders know nothing of this: their group
// sends reach every member live, without a position, and are not kept; Django members receive the
// "__ginws_pos__" entry as an extra key of the event.
//
// # Sentinel
//
// A Hosts entry with master_set is a shard behind Redis Sentinel (see Config.Hosts): rueidis asks
// the sentinels for the master, follows their +switch-master events, and checks again every 5 s.
// When the master dies, the receive loops' connections break, the shard is degraded, and the
// keeper re-adds the memberships on the promoted replica. channels_redis' sentinel host
// ({"sentinels": [(host, port), ...], "master_name": ..., "sentinel_kwargs": {...}}) is the same
// shard: list it at the same position.
//
// # Concurrency
//
// A Layer is safe for concurrent use by any number of goroutines. Subscriber callbacks run on the
// receive loop: they must not block and must not call back into the layer.
package redislayer
