package redislayer

import "github.com/redis/rueidis"

// Presence in Redis, per group, on the group's shard (keys cannot collide with channels_redis':
// names cannot contain ':'):
//
//	<Prefix>:ginws:pz:<group>  sorted set: channel → deadline (ms, Redis clock)
//	<Prefix>:ginws:ph:<group>  hash: channel → {"u": user, "i": info} (JSON)
//	<Prefix>:ginws:pu:<group>  hash: user → connections
//
// Every change goes through one of the scripts below, so that the connection counts stay exact and
// each user's first arrival and last departure is seen by exactly one caller: the script returns
// it, and that caller announces it. Deadlines use Redis' clock (TIME), so processes on machines
// whose clocks differ agree. A connection whose deadline has passed (its process stopped
// refreshing it) is removed — and its user's departure reported — by whichever script touches the
// group next: every process refreshes and sweeps the groups it tracks connections in. The three
// keys expire together a whole TTL after the last write, so a group whose every tracker died
// leaves nothing behind.

// presenceLib is shared by the scripts: KEYS[1..3] are the group's z, h and u keys (the batch
// script, presenceApplyScript, points z, h and u at each of its groups in turn).
//
//	now()          Redis time in ms
//	drop(ch, out)  removes ch (known to be in z), appends its user to out when it was the last
//	sweep(now,out) drops every connection whose deadline has passed
//	keep(ms)       renews the three keys' expiry
const presenceLib = `
local z, h, u = KEYS[1], KEYS[2], KEYS[3]
local function now()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function userOf(v)
  if not v then return nil end
  local ok, d = pcall(cjson.decode, v)
  if ok and type(d) == 'table' and type(d.u) == 'string' then return d.u end
  return nil
end
local function dec(user, out)
  if not user then return end
  if redis.call('HINCRBY', u, user, -1) <= 0 then
    redis.call('HDEL', u, user)
    out[#out + 1] = user
  end
end
local function drop(ch, out)
  redis.call('ZREM', z, ch)
  local user = userOf(redis.call('HGET', h, ch))
  redis.call('HDEL', h, ch)
  dec(user, out)
end
local function sweep(t, out)
  local dead = redis.call('ZRANGEBYSCORE', z, '-inf', t, 'LIMIT', 0, 10000)
  for _, ch in ipairs(dead) do drop(ch, out) end
end
local function keep(ms)
  redis.call('PEXPIRE', z, ms)
  redis.call('PEXPIRE', h, ms)
  redis.call('PEXPIRE', u, ms)
end
`

// presenceTrackScript tracks connections: ARGV entry lifetime (ms), key lifetime (ms), then
// (channel, user, value) triples. It returns {joined users, left users} (left: a connection
// tracked again under another user, or the swept dead).
var presenceTrackScript = rueidis.NewLuaScript(presenceLib + `
local t = now()
local joined, left = {}, {}
sweep(t, left)
local deadline = t + tonumber(ARGV[1])
for i = 3, #ARGV, 3 do
  local ch, user, v = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  local old = nil
  if redis.call('ZSCORE', z, ch) then old = userOf(redis.call('HGET', h, ch)) end
  redis.call('ZADD', z, deadline, ch)
  redis.call('HSET', h, ch, v)
  if old ~= user then
    dec(old, left)
    if redis.call('HINCRBY', u, user, 1) == 1 then joined[#joined + 1] = user end
  end
end
keep(tonumber(ARGV[2]))
return {joined, left}
`)

// presenceUntrackScript untracks channels (ARGV) and returns the users that left.
var presenceUntrackScript = rueidis.NewLuaScript(presenceLib + `
local left = {}
for _, ch in ipairs(ARGV) do
  if redis.call('ZSCORE', z, ch) then drop(ch, left) end
end
return left
`)

// presenceRefreshScript is a process's heartbeat for one group: it sweeps the dead, pushes back
// the deadlines of the process's live connections (ARGV: entry lifetime, key lifetime, channels)
// and returns {left users, channels it did not find} — connections the process must track again
// (Redis lost them, or they were swept while the process was too slow to refresh them).
var presenceRefreshScript = rueidis.NewLuaScript(presenceLib + `
local t = now()
local left, missing = {}, {}
sweep(t, left)
local deadline = t + tonumber(ARGV[1])
for i = 3, #ARGV do
  local ch = ARGV[i]
  if redis.call('ZADD', z, 'XX', 'CH', deadline, ch) == 0 and not redis.call('ZSCORE', z, ch) then
    missing[#missing + 1] = ch
  end
end
if redis.call('EXISTS', z) == 1 then keep(tonumber(ARGV[2])) end
return {left, missing}
`)

// presenceListScript sweeps the dead and returns {left users, every connection's value}.
var presenceListScript = rueidis.NewLuaScript(presenceLib + `
local left = {}
sweep(now(), left)
return {left, redis.call('HVALS', h)}
`)

// presenceCountScript sweeps the dead and returns {left users, users, connections}.
var presenceCountScript = rueidis.NewLuaScript(presenceLib + `
local left = {}
sweep(now(), left)
return {left, redis.call('HLEN', u), redis.call('ZCARD', z)}
`)

// presenceApplyScript applies, in order, the tracks and untracks of one or more groups of a shard
// that a process gathered (presence_batch.go): one call instead of one per connection. KEYS are
// the z, h and u keys of each group, three by three. ARGV: entry lifetime (ms), key lifetime (ms),
// then the operations, five values each: group number (1-based), "t" (track) or "d" (untrack),
// channel, user, value (user and value empty for an untrack). Every group is swept first. It
// returns the changes in the order they happened, four values each: group number, "j" (joined) or
// "l" (left), user, and for a join the number (1-based) of the operation that made it (0 for a
// leave).
var presenceApplyScript = rueidis.NewLuaScript(presenceLib + `
local t = now()
local deadline = t + tonumber(ARGV[1])
local out = {}
local function emit(g, kind, users, op)
  for _, user in ipairs(users) do
    out[#out + 1] = g; out[#out + 1] = kind; out[#out + 1] = user; out[#out + 1] = op
  end
end
local function use(g)
  z, h, u = KEYS[3 * g - 2], KEYS[3 * g - 1], KEYS[3 * g]
end
for g = 1, #KEYS / 3 do
  use(g)
  local left = {}
  sweep(t, left)
  emit(g, 'l', left, 0)
end
for i = 3, #ARGV, 5 do
  local g, op, ch = tonumber(ARGV[i]), ARGV[i + 1], ARGV[i + 2]
  use(g)
  local left = {}
  if op == 't' then
    local user = ARGV[i + 3]
    local old = nil
    if redis.call('ZADD', z, deadline, ch) == 0 then old = userOf(redis.call('HGET', h, ch)) end
    redis.call('HSET', h, ch, ARGV[i + 4])
    if old ~= user then
      dec(old, left)
      emit(g, 'l', left, 0)
      if redis.call('HINCRBY', u, user, 1) == 1 then emit(g, 'j', {user}, (i - 3) / 5 + 1) end
    end
  elseif redis.call('ZREM', z, ch) == 1 then
    local user = userOf(redis.call('HGET', h, ch))
    redis.call('HDEL', h, ch)
    dec(user, left)
    emit(g, 'l', left, 0)
  end
end
local keys = tonumber(ARGV[2])
for g = 1, #KEYS / 3 do
  use(g)
  if redis.call('EXISTS', z) == 1 then keep(keys) end
end
return out
`)
