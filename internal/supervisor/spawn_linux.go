package supervisor

import (
	"errors"
	"os/exec"
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

// waitAndKillGroup waits for cmd's process to exit, kills what is left of
// its process group, and reaps it. A replica is a container: when its main
// process exits, everything else in it dies too.
//
// The group is killed before the process is reaped because an unreaped
// zombie keeps its pid, and so the group id, from being reused: the SIGKILL
// cannot reach an unrelated process.
func waitAndKillGroup(cmd *exec.Cmd) error {
	pid := cmd.Process.Pid
	for {
		var info unix.Siginfo
		err := unix.Waitid(unix.P_PID, pid, &info, unix.WEXITED|unix.WNOWAIT, nil)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		// On error (there is none we expect) fall through: Wait reaps.
		break
	}
	_ = signalGroup(pid, syscall.SIGKILL)
	return cmd.Wait()
}
