//go:build !linux

package djangotest

import (
	"os/exec"
	"syscall"
)

func setProcAttr(cmd *exec.Cmd) {}

func signalGroup(cmd *exec.Cmd, sig syscall.Signal) {
	if cmd.Process != nil {
		_ = cmd.Process.Signal(sig)
	}
}
