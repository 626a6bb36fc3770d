package redislayer

import (
	"strings"

	"github.com/redis/rueidis"
)

// Group history in Redis (see layer.Resumer). A group with history has two more keys on its shard:
//
//	<Prefix>:hist:<group>     hash: "e" the epoch, "o" the last offset; expires GroupExpiry after the last send or join
//	<Prefix>:histlog:<group>  stream of the kept messages, fields "o" (offset) and "m" (12 bytes + msgpack map)
//
// The position is assigned, the message appended to the stream and the members' copies written in
// one script, so position order is the order in which every process key receives the group's
// messages. When Redis lost the hash (a restart without persistence, a failover to a replica that
// had not seen it), the next send or join writes a new epoch: a client resuming from a position of
// the old one is told of the gap. A stream entry's ID is Redis' time, which trims by age (XTRIM
// MINID); MAXLEN trims by size.

// assignLua defines assign(newEpoch, size, ageMs, metaTTL, stored): the next position of the group
// (KEYS[2] the hash, KEYS[3] the stream), with stored appended to its history.
const assignLua = `
local function assign(newEpoch, size, agems, ttl, stored)
  local epoch = redis.call('HGET', KEYS[2], 'e')
  if not epoch then
    epoch = newEpoch
    redis.call('HSET', KEYS[2], 'e', epoch)
  end
  local off = redis.call('HINCRBY', KEYS[2], 'o', 1)
  redis.call('EXPIRE', KEYS[2], ttl)
  local t = redis.call('TIME')
  local nowms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  redis.call('XADD', KEYS[3], 'MAXLEN', size, '*', 'o', off, 'm', stored)
  redis.call('XTRIM', KEYS[3], 'MINID', nowms - tonumber(agems))
  redis.call('PEXPIRE', KEYS[3], agems)
  return epoch, off
end
`

// noHistory is groupSendScript's prelude: no position entry.
const noHistory = `local posEntry, extra = '', 0`

// groupSendHistoryScript is groupSendScript for a group with history: it also assigns the
// message's position, keeps the message, and adds "__ginws_pos__": [group, "<offset>-<epoch>"]
// to every member it writes (even when the group has no member now, the message is kept).
//
// KEYS: group key, history hash, history stream. ARGV: those of groupSendScript, then new epoch,
// history size, history age in ms, hash expiry in seconds, group name.
var groupSendHistoryScript = rueidis.NewLuaScript(strings.Replace(groupSendLua, historyHere, assignLua+`
local epoch, off = assign(ARGV[11], ARGV[12], ARGV[13], ARGV[14], rnd .. header(nentries, 128, '\222', '\223') .. entries)
local posEntry, extra = '\173__ginws_pos__\146' .. str(ARGV[15]) .. str(off .. '-' .. epoch), 1
`, 1))

// membersHistoryScript is membersScript for a group with history, on the sharded path: it assigns
// the position, keeps the message and returns {epoch, offset, members...}; the caller writes the
// members' copies with the position.
//
// KEYS: group key, history hash, history stream. ARGV: group cutoff, stored message (12 bytes +
// msgpack map), new epoch, history size, history age in ms, hash expiry in seconds.
var membersHistoryScript = rueidis.NewLuaScript(assignLua + `
local epoch, off = assign(ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], 0, ARGV[1])
local m = redis.call('ZRANGE', KEYS[1], 0, -1)
table.insert(m, 1, tostring(off))
table.insert(m, 1, epoch)
return m
`)

// joinScript is GroupAddSince: the GroupAdd (ZADD, EXPIRE) and the read of the history after a
// position, atomically, so that every message of the group is either in what it returns (offset up
// to the returned one) or written to the channel's key after it (offset above).
//
// KEYS: group key, history hash, history stream. ARGV: channel, score, group expiry seconds, new
// epoch, hash expiry seconds, since epoch ("" for none), since offset, history age in ms. It returns
// {epoch, last offset, gap ("0" or "1"), offset, message, offset, message...}, oldest first.
var joinScript = rueidis.NewLuaScript(`
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
redis.call('EXPIRE', KEYS[1], ARGV[3])
local epoch = redis.call('HGET', KEYS[2], 'e')
if not epoch then
  epoch = ARGV[4]
  redis.call('HSET', KEYS[2], 'e', epoch, 'o', 0)
end
redis.call('EXPIRE', KEYS[2], ARGV[5])
local top = tonumber(redis.call('HGET', KEYS[2], 'o') or '0')
local out = {epoch, tostring(top), '0'}
if ARGV[6] == '' then return out end
local t = redis.call('TIME')
redis.call('XTRIM', KEYS[3], 'MINID', tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) - tonumber(ARGV[8]))
local since = tonumber(ARGV[7])
local entries
if ARGV[6] == epoch and since <= top then
  if since == top then return out end
  entries = redis.call('XREVRANGE', KEYS[3], '+', '-', 'COUNT', top - since)
  if #entries < top - since then out[3] = '1' end
else
  out[3] = '1'
  entries = redis.call('XREVRANGE', KEYS[3], '+', '-')
end
for i = #entries, 1, -1 do
  local f = entries[i][2]
  local o, m
  for j = 1, #f, 2 do
    if f[j] == 'o' then o = f[j + 1] elseif f[j] == 'm' then m = f[j + 1] end
  end
  out[#out + 1] = o
  out[#out + 1] = m
end
return out
`)
