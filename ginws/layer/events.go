package layer

import (
	"errors"
	"fmt"
)

// Event types. A message's "type" names the handler that gets it, with Django Channels' rules
// (channels.consumer.get_handler_name): the type must be a non-empty string that does not start
// with '_' or '.', and '.' stands for '_', so "chat.message" and "chat_message" name one handler
// (Channels' method chat_message). ginws consumers and Worker apply these rules alike.

// ValidateEventType checks typ against Channels' rules for event types: not empty, and not starting
// with '_' or '.' (in Channels such a type would name a private method). It does not allocate.
func ValidateEventType(typ string) error {
	if typ == "" {
		return errNoType
	}
	if typ[0] == '_' || typ[0] == '.' {
		return fmt.Errorf("layer: malformed event type %s: it must not start with '_' or '.'", quoteType(typ))
	}
	return nil
}

var errNoType = errors.New(`layer: message has no "type" (or it is not a string)`)

// HandlerName returns the name of the handler for an event type, as Channels derives a method name
// from it: '.' becomes '_'. Two types with one handler name reach the same handler. A type that
// breaks the rules of ValidateEventType is an error.
func HandlerName(typ string) (string, error) {
	if err := ValidateEventType(typ); err != nil {
		return "", err
	}
	i := 0
	for i < len(typ) && typ[i] != '.' {
		i++
	}
	if i == len(typ) {
		return typ, nil
	}
	b := []byte(typ)
	for ; i < len(b); i++ {
		if b[i] == '.' {
			b[i] = '_'
		}
	}
	return string(b), nil
}

// quoteType quotes an event type for an error message, cut to 64 bytes: types come from the
// network.
func quoteType(s string) string {
	if len(s) > 64 {
		s = s[:64] + "..."
	}
	return fmt.Sprintf("%q", s)
}
