package main

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"

	"ginws.dev/ginws"
	"ginws.dev/middleware"
)

// Sign-out closes the session's sockets everywhere. Every socket joins a group named after its
// session (ginws.Config.Groups); the logout view closes that group (Server.CloseGroup), which
// reaches the sockets on every process sharing the layer. A group per user is joined too, for a
// "sign out everywhere" or an admin's ban.

// sidKey is where the login view keeps the session's own ID: the cookie store has none.
const sidKey = "sid"

// closeSignedOut is the close code of a socket whose session signed out: a 4000-4999 code (the
// application's own), which the room page takes as final instead of reconnecting.
const closeSignedOut = 4001

func newSessionID() string { return rand.Text() }

func sessionGroup(sid string) string { return "session." + sid }

// userGroup names the user's group. User names are free text; group names are not, so the name
// is hashed.
func userGroup(name string) string {
	sum := sha256.Sum256([]byte(name))
	return "user." + hex.EncodeToString(sum[:16])
}

// kickGroups is Config.Groups: the socket's session and user groups.
func kickGroups(s *ginws.Scope) []string {
	var groups []string
	if sess, ok := middleware.SessionFrom(s); ok {
		if sid, ok := sess.Values[sidKey].(string); ok && sid != "" {
			groups = append(groups, sessionGroup(sid))
		}
	}
	if user, ok := middleware.UserFrom[string](s); ok {
		groups = append(groups, userGroup(user))
	}
	return groups
}
