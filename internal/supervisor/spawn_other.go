//go:build unix && !linux

package supervisor

import (
	"os/exec"
	"syscall"
)

// sysProcAttr puts a child in its own process group, so that stopping a
// replica reaches everything it forked. There is no Pdeathsig outside
// Linux: children outlive a nubo that is killed with SIGKILL.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}

// waitAndKillGroup waits for cmd's process, then kills what is left of its
// process group: a replica is a container, and everything in it dies with
// its main process. Without waitid(WNOWAIT) the group is killed just after
// the reap, which leaves a small window for pid reuse.
func waitAndKillGroup(cmd *exec.Cmd) error {
	err := cmd.Wait()
	_ = signalGroup(cmd.Process.Pid, syscall.SIGKILL)
	return err
}
