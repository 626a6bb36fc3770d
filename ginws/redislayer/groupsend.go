package redislayer

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/rueidis"

	"ginws.dev/ginws/layer"
)

// GroupSend sends msg to every member of group. It never fails because a member's key is full: that
// member misses the message and Stats().Dropped counts it. While the group's shard is degraded
// (Redis unreachable, or memberships being restored after a fault: see Health) it fails at once
// with an error wrapping ErrDegraded, and the message is not sent. Any other error means the
// message may or may not have been written.
//
// The message is encoded once; each channel key gets one member, whose "__asgi_channel__" lists
// the group's channels behind that key — one member per process for process-local channels, as
// channels_redis writes it. With one shard and no ChannelCapacity rules the whole send is a single
// script call (membership expiry, member list, capacity checks, writes); otherwise it is one call on
// the group's shard for the member list and one call per shard that holds members.
func (l *Layer) GroupSend(ctx context.Context, group string, msg layer.Message) error {
	return l.groupSend(ctx, group, msg, true)
}

// groupSend is GroupSend; without history, msg is not kept in the group's history even when a
// History rule matches the group (presence events: a rule such as "chat_*" matches the companion
// groups too, and a join or leave replayed to a resuming page would be stale).
func (l *Layer) groupSend(ctx context.Context, group string, msg layer.Message, history bool) (err error) {
	if err := layer.ValidateGroupName(group); err != nil {
		return err
	}
	b, err := encodeBody(msg)
	if err != nil {
		return err
	}
	ctx, cancel, err := l.call(ctx)
	if err != nil {
		return err
	}
	defer cancel()
	if err := l.groupShardDown(group); err != nil {
		l.st.refused.Add(1)
		return err
	}
	now := time.Now()
	defer l.observe(opGroupSend, now, &err)
	rule, hist := l.histories.Of(group)
	hist = hist && history
	if len(l.shards) == 1 && len(l.cfg.ChannelCapacity) == 0 {
		err = l.groupSendOne(ctx, group, b, now, rule, hist)
	} else {
		err = l.groupSendSharded(ctx, group, b, now, rule, hist)
	}
	if err != nil {
		l.poke(group)
		return l.callError(fmt.Sprintf("send to group %q", group), err)
	}
	l.st.groupSends.Add(1)
	return nil
}

func (l *Layer) groupSendOne(ctx context.Context, group string, b body, now time.Time, rule layer.HistoryRule, hist bool) error {
	rnd := randomPrefix()
	script, keys := groupSendScript, []string{l.groupKey(group)}
	args := []string{
		l.cutoff(now, l.groupSec), l.cfg.Prefix, strconv.Itoa(b.n), string(b.entries), string(rnd[:]),
		score(now), strconv.Itoa(l.cfg.Capacity), strconv.Itoa(l.cfg.ProcessCapacity), strconv.FormatInt(l.expirySec, 10), l.cutoff(now, l.expirySec),
	}
	if hist {
		script = groupSendHistoryScript
		keys = append(keys, l.histKeys(group)...)
		args = append(append(args, l.histArgs(rule)...), group)
	}
	res, err := script.Exec(ctx, l.shards[0], keys, args).AsIntSlice()
	if err != nil {
		return err
	}
	if len(res) == 2 {
		l.st.dropped.Add(uint64(res[0]))
		l.st.sent.Add(uint64(res[1] - res[0]))
	}
	return nil
}

// keyBatch is what one shard receives from a group send.
type keyBatch struct {
	keys, members, capacities []string
}

func (l *Layer) groupSendSharded(ctx context.Context, group string, b body, now time.Time, rule layer.HistoryRule, hist bool) error {
	rnd := randomPrefix()
	var names []string
	var pos layer.Position
	var err error
	if hist {
		args := append([]string{l.cutoff(now, l.groupSec), string(b.member(rnd, "", nil))}, l.histArgs(rule)...)
		names, err = membersHistoryScript.Exec(ctx, l.shard(group), append([]string{l.groupKey(group)}, l.histKeys(group)...), args).AsStrSlice()
		if err == nil && len(names) < 2 {
			err = fmt.Errorf("redislayer: history script replied with %d elements", len(names))
		}
		if err == nil {
			off, perr := strconv.ParseUint(names[1], 10, 64)
			if perr != nil {
				return fmt.Errorf("redislayer: history script replied offset %q", names[1])
			}
			pos, names = layer.Position{Epoch: names[0], Offset: off}, names[2:]
		}
	} else {
		names, err = membersScript.Exec(ctx, l.shard(group), []string{l.groupKey(group)},
			[]string{l.cutoff(now, l.groupSec)}).AsStrSlice()
	}
	if err != nil || len(names) == 0 {
		return err
	}
	// Channels by Redis key, in the order first seen; the capacity of a key is that of its first
	// channel, as in channels_redis (ProcessCapacity for process-local keys).
	type entry struct {
		names    []string
		capacity int
	}
	var order []string
	byKey := make(map[string]*entry, len(names))
	for _, name := range names {
		keyName := layer.NonLocalName(name)
		e := byKey[keyName]
		if e == nil {
			e = &entry{capacity: l.keyCapacity(name)}
			byKey[keyName] = e
			order = append(order, keyName)
		}
		e.names = append(e.names, name)
	}
	if len(l.shards) > 1 {
		if err := l.subtractElsewhere(ctx, order, func(k string) *int { return &byKey[k].capacity }, now); err != nil {
			return err
		}
	}
	batches := make([]keyBatch, len(l.shards))
	for _, keyName := range order {
		e := byKey[keyName]
		kb := &batches[consistentHash(keyName, len(l.shards))]
		kb.keys = append(kb.keys, l.cfg.Prefix+keyName)
		kb.members = append(kb.members, string(b.memberAt(rnd, "", e.names, group, pos)))
		kb.capacities = append(kb.capacities, strconv.Itoa(e.capacity))
	}
	sc, exp, cut := score(now), strconv.FormatInt(l.expirySec, 10), l.cutoff(now, l.expirySec)
	for i, kb := range batches {
		if len(kb.keys) == 0 {
			continue
		}
		args := make([]string, 0, 2*len(kb.keys)+3)
		args = append(append(append(args, kb.members...), kb.capacities...), sc, exp, cut)
		over, err := groupWriteScript.Exec(ctx, l.shards[i], kb.keys, args).AsInt64()
		if err != nil {
			return err
		}
		l.st.dropped.Add(uint64(over))
		l.st.sent.Add(uint64(int64(len(kb.keys)) - over))
	}
	return nil
}

// subtractElsewhere lowers the capacity of each normal channel key by what its other shards hold:
// round-robin senders spread a normal channel over every shard, and its capacity bounds the
// channel, not one shard's key. One pipelined round trip per shard.
func (l *Layer) subtractElsewhere(ctx context.Context, keyNames []string, capacity func(string) *int, now time.Time) error {
	lo := "(" + l.cutoff(now, l.expirySec)
	for j, c := range l.shards {
		var names []string
		var cmds rueidis.Commands
		for _, k := range keyNames {
			if strings.HasSuffix(k, "!") || consistentHash(k, len(l.shards)) == j {
				continue
			}
			names = append(names, k)
			cmds = append(cmds, c.B().Zcount().Key(l.cfg.Prefix+k).Min(lo).Max("+inf").Build())
		}
		if len(cmds) == 0 {
			continue
		}
		for i, r := range c.DoMulti(ctx, cmds...) {
			n, err := r.AsInt64()
			if err != nil {
				return err
			}
			*capacity(names[i]) -= int(n)
		}
	}
	return nil
}
