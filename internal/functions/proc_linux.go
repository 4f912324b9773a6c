package functions

import "syscall"

// buildProcAttr puts a build in its own process group and has the kernel
// kill it if the thread that started it dies (see build).
func buildProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
