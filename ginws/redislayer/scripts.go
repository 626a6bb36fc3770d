package redislayer

import (
	"strings"

	"github.com/redis/rueidis"
)

// The Lua scripts have the effect of channels_redis 4.0.0's commands, one round trip each. Scripts
// are sent once and then called by SHA (EVALSHA), and concurrent calls from many goroutines share
// round trips through rueidis' automatic pipelining.

// sendScript is channels_redis' send: drop expired members, refuse when the key holds its
// capacity (ZCOUNT), else ZADD and EXPIRE. channels_redis issues these as four commands; here they
// are one atomic script, so concurrent senders cannot overshoot the capacity.
//
// KEYS[1] channel key. ARGV: member, score (time), capacity, expiry seconds, expiry cutoff.
var sendScript = rueidis.NewLuaScript(`
redis.call('ZREMRANGEBYSCORE', KEYS[1], 0, ARGV[5])
if redis.call('ZCOUNT', KEYS[1], '-inf', '+inf') >= tonumber(ARGV[3]) then
  return 0
end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
redis.call('EXPIRE', KEYS[1], ARGV[4])
return 1
`)

// membersScript is the first half of channels_redis' group_send: drop expired memberships, then
// list the members. KEYS[1] group key. ARGV[1] group expiry cutoff.
var membersScript = rueidis.NewLuaScript(`
redis.call('ZREMRANGEBYSCORE', KEYS[1], 0, ARGV[1])
return redis.call('ZRANGE', KEYS[1], 0, -1)
`)

// groupWriteScript is the second half, channels_redis' group_send Lua script (with the expiry
// cleanup it pipelines just before): per channel key, ZCOUNT against the capacity, ZADD, EXPIRE.
// It returns how many keys were full.
//
// KEYS: channel keys on this shard. ARGV: one member per key, one capacity per key, score,
// expiry seconds, expiry cutoff.
var groupWriteScript = rueidis.NewLuaScript(`
local n = #KEYS
local now, expiry, cutoff = ARGV[2*n+1], ARGV[2*n+2], ARGV[2*n+3]
local over = 0
for i = 1, n do
  redis.call('ZREMRANGEBYSCORE', KEYS[i], 0, cutoff)
  if redis.call('ZCOUNT', KEYS[i], '-inf', '+inf') < tonumber(ARGV[n+i]) then
    redis.call('ZADD', KEYS[i], now, ARGV[i])
    redis.call('EXPIRE', KEYS[i], expiry)
  else
    over = over + 1
  end
end
return over
`)

// groupSendScript is the whole group send in one round trip, used when there is a single shard and
// every channel has the default capacity: it lists the members, groups them by channel key (the
// part of a process-local name up to '!'), and writes one member per key, built as channels_redis
// builds it — 12 random bytes, then a msgpack map of the message's entries (encoded once, by the
// caller) plus "__asgi_channel__": [names...]. It returns {full keys, keys written to}.
//
// KEYS[1] group key. ARGV: group cutoff, key prefix, number of message entries, encoded entries,
// random prefix, score, capacity of a normal channel key, capacity of a process-local key, expiry
// seconds, expiry cutoff.
var groupSendScript = rueidis.NewLuaScript(strings.Replace(groupSendLua, historyHere, noHistory, 1))

// groupSendLua is groupSendScript's source, with historyHere where the script with history
// (groupSendHistoryScript) assigns the position.
// historyHere marks the place of the position's assignment in groupSendLua.
const historyHere = "-- history --"

const groupSendLua = `
local prefix, nentries, entries, rnd = ARGV[2], tonumber(ARGV[3]), ARGV[4], ARGV[5]
local now, capacity, pcapacity, expiry, cutoff = ARGV[6], tonumber(ARGV[7]), tonumber(ARGV[8]), ARGV[9], ARGV[10]
local function be16(n) return string.char(math.floor(n / 256) % 256, n % 256) end
local function be32(n) return be16(math.floor(n / 65536)) .. be16(n % 65536) end
local function str(s)
  local n = #s
  if n < 32 then return string.char(160 + n) .. s
  elseif n < 256 then return '\217' .. string.char(n) .. s
  elseif n < 65536 then return '\218' .. be16(n) .. s end
  return '\219' .. be32(n) .. s
end
local function header(n, fix, c16, c32)
  if n < 16 then return string.char(fix + n)
  elseif n < 65536 then return c16 .. be16(n) end
  return c32 .. be32(n)
end
-- history --
redis.call('ZREMRANGEBYSCORE', KEYS[1], 0, ARGV[1])
local members = redis.call('ZRANGE', KEYS[1], 0, -1)
if #members == 0 then return {0, 0} end
local order, names, caps = {}, {}, {}
for _, ch in ipairs(members) do
  local bang = string.find(ch, '!', 1, true)
  local key = prefix .. (bang and string.sub(ch, 1, bang) or ch)
  local list = names[key]
  if not list then
    list = {}
    names[key] = list
    caps[key] = bang and pcapacity or capacity
    order[#order + 1] = key
  end
  list[#list + 1] = ch
end
local over = 0
for _, key in ipairs(order) do
  local list = names[key]
  local parts = {rnd, header(nentries + 1 + extra, 128, '\222', '\223'), entries, posEntry, '\176__asgi_channel__', header(#list, 144, '\220', '\221')}
  for _, ch in ipairs(list) do parts[#parts + 1] = str(ch) end
  redis.call('ZREMRANGEBYSCORE', key, 0, cutoff)
  if redis.call('ZCOUNT', key, '-inf', '+inf') < caps[key] then
    redis.call('ZADD', key, now, table.concat(parts))
    redis.call('EXPIRE', key, expiry)
  else
    over = over + 1
  end
end
return {over, #order}
`

// popScript pops the oldest message of a normal channel without blocking, after putting back what
// a channels_redis receiver left in its "$inflight" backup key (the cleanup channels_redis' receive
// runs before each BZPOPMIN). KEYS[1] channel key, KEYS[2] its backup key.
var popScript = rueidis.NewLuaScript(`
local backed = redis.call('ZRANGE', KEYS[2], 0, -1, 'WITHSCORES')
for i = #backed, 1, -2 do
  redis.call('ZADD', KEYS[1], backed[i], backed[i - 1])
end
redis.call('DEL', KEYS[2])
return redis.call('ZPOPMIN', KEYS[1])
`)

// headScript restores a channels_redis "$inflight" backup, as popScript does, and returns the
// oldest message's member and score without popping it. KEYS[1] channel key, KEYS[2] backup key.
var headScript = rueidis.NewLuaScript(`
local backed = redis.call('ZRANGE', KEYS[2], 0, -1, 'WITHSCORES')
for i = #backed, 1, -2 do
  redis.call('ZADD', KEYS[1], backed[i], backed[i - 1])
end
redis.call('DEL', KEYS[2])
return redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
`)

// putBackScript returns a popped message to its key with its score and renews the key's expiry.
// KEYS[1] channel key. ARGV: score, member, expiry seconds.
var putBackScript = rueidis.NewLuaScript(`
redis.call('ZADD', KEYS[1], ARGV[1], ARGV[2])
redis.call('EXPIRE', KEYS[1], ARGV[3])
return 1
`)

// flushScript is channels_redis' flush: delete every key that starts with the prefix.
// ARGV[1] is the KEYS pattern.
var flushScript = rueidis.NewLuaScript(`
local keys = redis.call('KEYS', ARGV[1])
for i = 1, #keys, 5000 do
  redis.call('DEL', unpack(keys, i, math.min(i + 4999, #keys)))
end
return #keys
`)
