package layer_test

import (
	"errors"
	"strings"
	"testing"

	"ginws.dev/ginws/layer"
)

func TestValidateChannelName(t *testing.T) {
	t.Parallel()
	valid := []string{"a", "chat_lobby", "specific.abc!def", "specific.abc!", "A-Z.0_9", strings.Repeat("x", 99)}
	for _, name := range valid {
		if err := layer.ValidateChannelName(name); err != nil {
			t.Errorf("ValidateChannelName(%q) = %v, want nil", name, err)
		}
	}
	invalid := map[string]string{
		"":                       "must not be empty",
		strings.Repeat("x", 100): "shorter than 100",
		"has space":              "found ' '",
		"naïve":                  "non-ASCII",
		"a!b!c":                  "only one '!'",
		"!x":                     "before '!'",
		"tab\there":              "control character",
	}
	for name, rule := range invalid {
		err := layer.ValidateChannelName(name)
		var ne *layer.NameError
		if !errors.As(err, &ne) || !errors.Is(err, layer.ErrInvalidName) {
			t.Errorf("ValidateChannelName(%q) = %v, want a *NameError", name, err)
			continue
		}
		if !strings.Contains(err.Error(), rule) {
			t.Errorf("ValidateChannelName(%q) = %q, want it to mention %q", name, err, rule)
		}
	}
}

func TestValidateGroupName(t *testing.T) {
	t.Parallel()
	if err := layer.ValidateGroupName("chat_lobby.1-2"); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"", "a!b", "with space", strings.Repeat("g", 100)} {
		if err := layer.ValidateGroupName(name); !errors.Is(err, layer.ErrInvalidName) {
			t.Errorf("ValidateGroupName(%q) = %v, want ErrInvalidName", name, err)
		}
	}
}

func TestNonLocalName(t *testing.T) {
	t.Parallel()
	if got := layer.NonLocalName("specific.abc!def"); got != "specific.abc!" {
		t.Fatalf("NonLocalName = %q", got)
	}
	if got := layer.NonLocalName("plain"); got != "plain" {
		t.Fatalf("NonLocalName(plain) = %q", got)
	}
}
