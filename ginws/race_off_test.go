//go:build !race

package ginws_test

const raceEnabled = false
