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

// presenceLib is shared by the scripts: KEYS[1..3] are the group's z, h and u keys.
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
