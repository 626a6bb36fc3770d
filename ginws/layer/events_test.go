package layer_test

import (
	"strings"
	"testing"

	"ginws.dev/ginws/layer"
)

var eventTypes = []struct {
	typ, name string // name "" means refused
	err       string
}{
	{"chat.message", "chat_message", ""},
	{"chat_message", "chat_message", ""},
	{"generate", "generate", ""},
	{"a.b.c", "a_b_c", ""},
	{"websocket.connect", "websocket_connect", ""},
	{"x.", "x_", ""},
	{"", "", `has no "type"`},
	{"_private", "", "must not start with '_' or '.'"},
	{".hidden", "", "must not start with '_' or '.'"},
}

func TestHandlerName(t *testing.T) {
	for _, tc := range eventTypes {
		name, err := layer.HandlerName(tc.typ)
		verr := layer.ValidateEventType(tc.typ)
		if tc.err == "" {
			if err != nil || verr != nil || name != tc.name {
				t.Errorf("HandlerName(%q) = %q, %v (Validate: %v); want %q", tc.typ, name, err, verr, tc.name)
			}
			continue
		}
		if err == nil || verr == nil || !strings.Contains(err.Error(), tc.err) || err.Error() != verr.Error() {
			t.Errorf("HandlerName(%q) = %q, %v (Validate: %v); want an error containing %q", tc.typ, name, err, verr, tc.err)
		}
	}
	long := "_" + strings.Repeat("x", 200)
	if err := layer.ValidateEventType(long); err == nil || len(err.Error()) > 150 {
		t.Errorf("a long bad type should give a short error, got %v", err)
	}
}

func TestValidateEventTypeDoesNotAllocate(t *testing.T) {
	if n := testing.AllocsPerRun(100, func() { _ = layer.ValidateEventType("chat.message") }); n != 0 {
		t.Errorf("ValidateEventType allocates %v times per call", n)
	}
	if n := testing.AllocsPerRun(100, func() { _, _ = layer.HandlerName("generate") }); n != 0 {
		t.Errorf("HandlerName of a type without '.' allocates %v times per call", n)
	}
}
