//go:build unix && !linux

package functions

import "syscall"

// buildProcAttr puts a build in its own process group; there is no
// Pdeathsig outside Linux.
func buildProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
