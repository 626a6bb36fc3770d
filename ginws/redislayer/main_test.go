package redislayer_test

import (
	"os"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	if spec := os.Getenv(helperEnv); spec != "" { // this binary runs as TestFaultProcessKilled's member process
		os.Exit(runFaultHelper(spec))
	}
	goleak.VerifyTestMain(m)
}
