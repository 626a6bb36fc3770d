//go:build !linux

package main

import "os/exec"

// setDeathSignal does nothing where there is no parent-death signal; Proc.Stop still stops cmd.
func setDeathSignal(cmd *exec.Cmd) {}
