package lib0

import (
	"testing"

	"ginws.dev/ginws/yjs/internal/jstest"
)

// TestFixturesAreCurrent regenerates testdata/lib0.json with the pinned lib0 and checks that the
// committed file matches.
func TestFixturesAreCurrent(t *testing.T) {
	t.Parallel()
	jstest.FixtureCurrent(t, "lib0", "gen/lib0-fixtures.mjs", "testdata/lib0.json")
}
