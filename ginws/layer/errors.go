package layer

import (
	"errors"
	"fmt"
)

// Sentinel errors. Compare with errors.Is: layers may wrap them with more detail.
var (
	// ErrChannelFull is returned by Layer.Send when the channel already holds its capacity of
	// messages, as Channels raises ChannelFull. GroupSend never returns it: a full member misses the
	// message and the layer counts the drop.
	ErrChannelFull = errors.New("layer: channel is full")

	// ErrInvalidName is wrapped by every *NameError, so errors.Is(err, ErrInvalidName) tells a bad
	// channel or group name from other failures.
	ErrInvalidName = errors.New("layer: invalid name")

	// ErrClosed is returned by a layer that has been closed.
	ErrClosed = errors.New("layer: channel layer closed")
)

// NameError reports a channel or group name that breaks the naming rules shared with Django
// Channels. Rule says which rule, in words a developer can act on.
type NameError struct {
	Kind string // "channel" or "group"
	Name string
	Rule string
}

func (e *NameError) Error() string {
	return fmt.Sprintf("layer: invalid %s name %q: %s", e.Kind, e.Name, e.Rule)
}

// Unwrap makes errors.Is(err, ErrInvalidName) true.
func (e *NameError) Unwrap() error { return ErrInvalidName }

// ConfigError reports an invalid configuration field. Every ginws package applies one policy:
// configuration is checked where it is built, and a bad value is refused with a *ConfigError
// naming the field, the value and the rule. Constructors that return an error (redislayer.New)
// return it; the others (NewMemory, ginws.New, yjs.New, the middleware factories) panic with it,
// as regexp.MustCompile and chi do, because a bad literal is a programming error best caught when
// the process starts. Zero values always mean "the default"; what a negative duration means is said
// on each field, and where it is not said, a negative value is refused. (ginws.ConfigError is the
// same type.)
type ConfigError struct {
	Field string // the qualified field, e.g. "ginws.Config.WriteTimeout"
	Value any    // the value refused
	Rule  string // what a valid value is
}

func (e *ConfigError) Error() string {
	return fmt.Sprintf("%s = %v: %s", e.Field, e.Value, e.Rule)
}
