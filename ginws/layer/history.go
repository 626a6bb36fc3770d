package layer

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"path"
	"strconv"
	"strings"
	"time"
)

// Group history. A layer configured with HistoryRules keeps, for every group whose name matches a
// rule, the last messages sent to it. Each of them gets a Position when it is sent: the group's
// epoch and an offset one higher than the previous message's, assigned atomically with the send,
// so that every member receives the group's messages in position order. A channel can then join
// the group from a position it saw last (Resumer.GroupAddSince) and receive every later message,
// in order, before the live ones — with no gap and no duplicate, also while messages are being
// sent during the join. Groups that match no rule work as before: no position, no history, no cost.

// Position is the place of a message in its group's history: the epoch of the history (a random
// string that changes when the history is lost, e.g. when Redis lost its data) and the message's
// offset in it (1 for the first message of an epoch). The zero Position means "none". Positions
// of one group compare by Offset within one Epoch only.
type Position struct {
	Epoch  string
	Offset uint64
}

// IsZero reports whether p is the zero Position.
func (p Position) IsZero() bool { return p == Position{} }

// String returns p as an opaque token for clients ("<offset>-<epoch>"), or "" for the zero
// Position. ParsePosition reads it back.
func (p Position) String() string {
	if p.IsZero() {
		return ""
	}
	return strconv.FormatUint(p.Offset, 10) + "-" + p.Epoch
}

// ErrBadPosition is wrapped by the error ParsePosition returns for a malformed token.
var ErrBadPosition = errors.New("layer: malformed position")

// ParsePosition parses what Position.String returns. An empty string is the zero Position. Tokens
// come from clients: anything else than "<offset>-<epoch>" with a short epoch of letters and
// digits is an error wrapping ErrBadPosition.
func ParsePosition(s string) (Position, error) {
	if s == "" {
		return Position{}, nil
	}
	off, epoch, ok := strings.Cut(s, "-")
	n, err := strconv.ParseUint(off, 10, 64)
	if !ok || err != nil || epoch == "" || len(epoch) > 32 {
		return Position{}, fmt.Errorf("%w: %.40q", ErrBadPosition, s)
	}
	for i := 0; i < len(epoch); i++ {
		if c := epoch[i]; !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return Position{}, fmt.Errorf("%w: %.40q", ErrBadPosition, s)
		}
	}
	return Position{Epoch: epoch, Offset: n}, nil
}

// newEpoch returns a fresh random epoch (12 letters and digits).
func newEpoch() string {
	const digits = "abcdefghijklmnopqrstuvwxyz0123456789"
	var b [12]byte
	for i := range b {
		b[i] = digits[rand.IntN(len(digits))]
	}
	return string(b[:])
}

// HistoryRule enables history for the groups whose name matches Pattern (path.Match syntax, e.g.
// "chat_*"): the layer keeps their last Size messages, each for at most Age.
type HistoryRule struct {
	Pattern string
	// Size is how many messages are kept. Optional. Default 100.
	Size int
	// Age is how long a message is kept. Optional. Default 5 minutes.
	Age time.Duration
}

// Defaults of HistoryRule.
const (
	DefaultHistorySize = 100
	DefaultHistoryAge  = 5 * time.Minute
)

// Histories is a layer's history configuration: the first rule whose pattern matches a group's
// name, if any. Layer implementations share it, as they share Capacities. Safe for concurrent use;
// immutable.
type Histories struct {
	rules []HistoryRule
}

// NewHistories checks rules — each needs a well-formed pattern and no negative size or age — and
// fills in the defaults. A bad rule is a *ConfigError naming field (e.g.
// "redislayer.Config.History").
func NewHistories(field string, rules []HistoryRule) (Histories, error) {
	out := make([]HistoryRule, len(rules))
	for i, r := range rules {
		if _, err := path.Match(r.Pattern, ""); err != nil || r.Pattern == "" {
			why := "must not be empty"
			if err != nil {
				why = "must be a path.Match pattern: " + err.Error()
			}
			return Histories{}, &ConfigError{Field: fmt.Sprintf("%s[%d].Pattern", field, i), Value: fmt.Sprintf("%q", r.Pattern), Rule: why}
		}
		if r.Size < 0 {
			return Histories{}, &ConfigError{Field: fmt.Sprintf("%s[%d].Size", field, i), Value: r.Size, Rule: "must not be negative (zero means the default, 100)"}
		}
		if r.Age < 0 {
			return Histories{}, &ConfigError{Field: fmt.Sprintf("%s[%d].Age", field, i), Value: r.Age, Rule: "must not be negative (zero means the default, 5 minutes)"}
		}
		if r.Size == 0 {
			r.Size = DefaultHistorySize
		}
		if r.Age == 0 {
			r.Age = DefaultHistoryAge
		}
		out[i] = r
	}
	return Histories{rules: out}, nil
}

// Of returns the rule for group and whether there is one. Without rules it costs one length check.
func (h Histories) Of(group string) (HistoryRule, bool) {
	for _, r := range h.rules {
		if ok, _ := path.Match(r.Pattern, group); ok {
			return r, true
		}
	}
	return HistoryRule{}, false
}

// Resumer is implemented by layers that keep group history (Memory and redislayer, with History
// rules).
type Resumer interface {
	// GroupAddSince adds channel to group, as GroupAdd does, and delivers to it, before any
	// message sent after the join, every message of the group's history after since, in order.
	// Messages sent while it runs are delivered exactly once, after the replayed ones. A zero since
	// replays nothing. When the history cannot cover since (it was trimmed by size or age, or
	// its epoch is not the group's any more) the Recovery says so with Gap, and what the history
	// still holds is replayed. A group without history has nothing to replay: Gap is then true
	// for any non-zero since.
	GroupAddSince(ctx context.Context, group, channel string, since Position) (Recovery, error)
}

// Recovery is what GroupAddSince did.
type Recovery struct {
	// Gap is true when messages after since may be missing: the history no longer covers since
	// (or the group has none). The client should reload its state.
	Gap bool
	// Replayed is how many messages were delivered from the history.
	Replayed int
	// Last is the group's position when the channel joined: the position of the last message sent
	// to the group before the join (its Offset is 0 when there was none in this epoch). A client
	// that has seen no message yet can resume from it. Zero for a group without history.
	Last Position
}
