//go:build !race

package yjs_test

const raceEnabled = false
