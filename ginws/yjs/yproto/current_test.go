package yproto_test

import (
	"testing"

	"ginws.dev/ginws/yjs/internal/jstest"
)

// TestFixturesAreCurrent regenerates testdata/frames.json with the pinned y-protocols and checks
// that the committed file matches.
func TestFixturesAreCurrent(t *testing.T) {
	t.Parallel()
	jstest.FixtureCurrent(t, "y-protocols", "gen/yproto-fixtures.mjs", "testdata/frames.json")
}
