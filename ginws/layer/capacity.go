package layer

import (
	"fmt"
	"path"
)

// CapacityRule gives the channels whose name matches Pattern (path.Match syntax, e.g.
// "http.request*") their own capacity.
type CapacityRule struct {
	Pattern  string
	Capacity int
}

// Capacities is a layer's capacity per channel: the first rule whose pattern matches the channel's
// name, or the default. Layer implementations share it (NewMemory and redislayer use it), so that
// every backend reads ChannelCapacity the same way. Safe for concurrent use; immutable.
type Capacities struct {
	def   int
	rules []CapacityRule
}

// NewCapacities checks rules — each needs a well-formed pattern and a positive capacity — and
// returns the capacities they give with def for every other channel. A bad rule is a
// *ConfigError naming field (e.g. "redislayer.Config.ChannelCapacity").
func NewCapacities(field string, def int, rules []CapacityRule) (Capacities, error) {
	for i, r := range rules {
		if _, err := path.Match(r.Pattern, ""); err != nil {
			return Capacities{}, &ConfigError{Field: fmt.Sprintf("%s[%d].Pattern", field, i), Value: fmt.Sprintf("%q", r.Pattern), Rule: "must be a path.Match pattern: " + err.Error()}
		}
		if r.Capacity <= 0 {
			return Capacities{}, &ConfigError{Field: fmt.Sprintf("%s[%d].Capacity", field, i), Value: r.Capacity, Rule: "must be positive"}
		}
	}
	return Capacities{def: def, rules: append([]CapacityRule(nil), rules...)}, nil
}

// Of returns the capacity of channel.
func (c Capacities) Of(channel string) int {
	for _, r := range c.rules {
		if ok, _ := path.Match(r.Pattern, channel); ok {
			return r.Capacity
		}
	}
	return c.def
}
