package supervisor

import (
	"errors"
	"syscall"

	"golang.org/x/sys/unix"
)

// sysProcAttr puts a child in its own process group, so that stopping a
// replica reaches everything it forked, and asks the kernel to SIGKILL it
// when the thread that started it dies (see spawner for why that thread
// lives as long as the children).
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

// waitExited blocks until process pid has exited, without reaping it, and
// reports true. While it stays a zombie its pid cannot be reused, so its
// process group can be signalled safely.
func waitExited(pid int) bool {
	for {
		var info unix.Siginfo
		err := unix.Waitid(unix.P_PID, pid, &info, unix.WEXITED|unix.WNOWAIT, nil)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		// Any other error (none is expected for our own child) leaves
		// the caller's Wait to find out.
		return err == nil
	}
}
