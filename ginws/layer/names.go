package layer

import "strings"

// MaxNameLength is the longest channel or group name allowed, in bytes: Channels requires names
// shorter than 100 characters.
const MaxNameLength = 99

// ValidateChannelName checks name against the channel naming rules shared with Django Channels:
// ASCII letters, digits, '-', '_' and '.', at most MaxNameLength bytes long, optionally followed by a
// single '!' and more of the same characters, which marks a process-local channel
// ("specific.<client>!<id>"). The returned error is a *NameError naming the rule that was broken.
func ValidateChannelName(name string) error {
	if err := checkName("channel", name); err != nil {
		return err
	}
	bang := strings.IndexByte(name, '!')
	if bang == 0 {
		return &NameError{Kind: "channel", Name: name, Rule: "the part before '!' must not be empty"}
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if c == '!' {
			if i != bang {
				return &NameError{Kind: "channel", Name: name, Rule: "only one '!' is allowed (it marks a process-local channel)"}
			}
			continue
		}
		if !nameByte(c) {
			return &NameError{Kind: "channel", Name: name, Rule: ruleChars(c)}
		}
	}
	return nil
}

// ValidateGroupName checks name against the group naming rules shared with Django Channels: ASCII
// letters, digits, '-', '_' and '.', at least one character and at most MaxNameLength bytes long.
func ValidateGroupName(name string) error {
	if err := checkName("group", name); err != nil {
		return err
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; !nameByte(c) {
			return &NameError{Kind: "group", Name: name, Rule: ruleChars(c)}
		}
	}
	return nil
}

// IsProcessLocal reports whether a channel name is process-local (contains '!').
func IsProcessLocal(channel string) bool { return strings.IndexByte(channel, '!') >= 0 }

// NonLocalName returns the part of a process-local channel name up to and including '!', the part
// shared by every channel of one process; other names are returned unchanged.
func NonLocalName(channel string) string {
	if i := strings.IndexByte(channel, '!'); i >= 0 {
		return channel[:i+1]
	}
	return channel
}

func checkName(kind, name string) error {
	if name == "" {
		return &NameError{Kind: kind, Name: name, Rule: "must not be empty"}
	}
	if len(name) > MaxNameLength {
		return &NameError{Kind: kind, Name: name, Rule: "must be shorter than 100 characters"}
	}
	return nil
}

func nameByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.'
}

func ruleChars(c byte) string {
	if c >= 0x80 {
		return "only ASCII letters, digits, '-', '_' and '.' are allowed (found a non-ASCII character)"
	}
	return "only ASCII letters, digits, '-', '_' and '.' are allowed (found " + quoteByte(c) + ")"
}

func quoteByte(c byte) string {
	if c < 0x20 || c == 0x7f {
		return "a control character"
	}
	return "'" + string(rune(c)) + "'"
}
