package main

import (
	"os/exec"
	"syscall"
)

// setDeathSignal has the kernel send cmd SIGTERM when the tool dies, so that a launcher such as
// daphnechat stops the servers it started even if the tool is killed.
func setDeathSignal(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
}
