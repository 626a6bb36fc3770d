package main

import (
	"encoding/json"
	"fmt"
	"strings"
)

// padding returns the text each message carries after its sequence number and timestamp:
//
//   - "pad": Size bytes of 'x' (the default; it compresses without limit, so it says nothing
//     about compression);
//   - "chat": a typical chat line (83 bytes);
//   - "notify": a notification as an app would push it, a JSON object of about 2 KB (ids, names,
//     URLs, timestamps, a short text), escaped into the message string.
func (o Params) padding() string {
	switch o.Payload {
	case "chat":
		return "hey, are we still on for the design review at 3pm? I pushed the fixes to the branch"
	case "notify":
		return notification()
	}
	return strings.Repeat("x", o.Size)
}

func notification() string {
	type actor struct {
		ID     int    `json:"id"`
		Login  string `json:"login"`
		Name   string `json:"name"`
		Avatar string `json:"avatar_url"`
	}
	type item struct {
		ID        string `json:"id"`
		Kind      string `json:"kind"`
		Title     string `json:"title"`
		URL       string `json:"url"`
		Actor     actor  `json:"actor"`
		CreatedAt string `json:"created_at"`
		Unread    bool   `json:"unread"`
	}
	names := []string{"Alice Martin", "Bob Chen", "Carla Rossi", "Dmitri Ivanov", "Emma Schulz", "Farid Haddad"}
	kinds := []string{"comment", "mention", "review_requested", "assigned", "merged", "closed"}
	var items []item
	for i := 0; i < 5; i++ {
		login := strings.ToLower(strings.Fields(names[i])[0])
		items = append(items, item{
			ID:        fmt.Sprintf("ntf_%08x", 0x3a7f1c00+i*7919),
			Kind:      kinds[i],
			Title:     fmt.Sprintf("%s on #%d: %s", kinds[i], 4100+i*37, []string{"Fix reconnect backoff", "Add presence API", "Flaky test in CI", "Bump gin to 1.10", "Docs: compression", "Release 0.9"}[i]),
			URL:       fmt.Sprintf("https://example.com/acme/app/pull/%d#issuecomment-%d", 4100+i*37, 188200311+i*4099),
			Actor:     actor{ID: 5120 + i*311, Login: login, Name: names[i], Avatar: fmt.Sprintf("https://avatars.example.com/u/%d?v=4", 5120+i*311)},
			CreatedAt: fmt.Sprintf("2026-11-30T1%d:%02d:%02dZ", i, (i*17)%60, (i*31)%60),
			Unread:    i%2 == 0,
		})
	}
	b, _ := json.Marshal(map[string]any{"type": "notifications", "count": len(items), "items": items, "next_cursor": "Y3Vyc29yOjIwMjYtMTEtMzBUMTA6MDA6MDBa"})
	s, _ := json.Marshal(string(b)) // escaped into the chat message's string
	return string(s[1 : len(s)-1])
}
