//go:build unix && !linux

package supervisor

import "syscall"

// sysProcAttr puts a child in its own process group, so that stopping a
// replica reaches everything it forked. There is no Pdeathsig outside
// Linux: children outlive a nubo that is killed with SIGKILL.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}

// waitExited reports false: without waitid(WNOWAIT) here, the caller reaps
// first and kills the rest of the group just after.
func waitExited(int) bool { return false }
