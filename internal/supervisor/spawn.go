package supervisor

import (
	"errors"
	"os/exec"
	"runtime"
	"strings"
	"syscall"
)

// spawner starts processes from one goroutine locked to its OS thread.
//
// Why: on Linux the supervisor sets Pdeathsig so that its children die when
// nubo dies, but the kernel sends that signal when the *thread* that forked
// the child exits, not the process (prctl(2); golang/go#27505). Go may end a
// thread whenever a goroutine exits while locked to it, so a child started
// from an arbitrary goroutine can be killed at random. Like moby (#44215)
// and containerd's go-runc, all starts happen on a thread that stays locked,
// and so alive, until every child has been reaped: the goroutine returns
// (ending its thread) only in close, after the supervisor has waited for
// every process it started.
type spawner struct {
	reqs chan spawnReq
	quit chan struct{}
	done chan struct{}
}

type spawnReq struct {
	cmd  *exec.Cmd
	errc chan error
}

func newSpawner() *spawner {
	sp := &spawner{reqs: make(chan spawnReq), quit: make(chan struct{}), done: make(chan struct{})}
	go sp.loop()
	return sp
}

func (sp *spawner) loop() {
	// Never unlocked: returning while locked ends the thread, which by then
	// is the parent of no live process.
	runtime.LockOSThread()
	defer close(sp.done)
	for {
		select {
		case req := <-sp.reqs:
			req.errc <- req.cmd.Start()
		case <-sp.quit:
			return
		}
	}
}

// start starts cmd on the spawner's thread.
func (sp *spawner) start(cmd *exec.Cmd) error {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = sysProcAttr()
	}
	req := spawnReq{cmd: cmd, errc: make(chan error, 1)}
	select {
	case sp.reqs <- req:
		return <-req.errc
	case <-sp.done:
		return ErrStopped
	}
}

// close ends the spawner. Every process it started must have been reaped.
func (sp *spawner) close() {
	select {
	case <-sp.quit:
	default:
		close(sp.quit)
	}
	<-sp.done
}

// signalGroup sends sig to the process group led by pid. A group that no
// longer exists is not an error.
func signalGroup(pid int, sig syscall.Signal) error {
	if pid <= 0 {
		return nil
	}
	err := syscall.Kill(-pid, sig)
	if errors.Is(err, syscall.ESRCH) {
		return nil
	}
	return err
}

// shellCommand makes sh exec a simple command instead of forking it, so that
// the service itself is the replica's main process: it gets SIGTERM as a
// container's PID 1 would, and its exit code is the replica's (a forking sh
// killed by SIGTERM would report 143 whatever the service did). Commands with
// shell operators run as written.
func shellCommand(c string) string {
	if SimpleCommand(c) {
		return "exec " + c
	}
	return c
}

// SimpleCommand reports whether sh can exec c directly: no shell operators,
// expansions, quotes or keywords.
func SimpleCommand(c string) bool {
	fields := strings.Fields(c)
	return len(fields) > 0 && !strings.ContainsAny(c, ";&|<>()`$\n\\{}*?[]!#~='\"") && !shellWords[fields[0]]
}

// shellWords are keywords and builtins that exec cannot run.
var shellWords = map[string]bool{
	"exec": true, "cd": true, "export": true, "if": true, "for": true, "while": true, "until": true,
	"case": true, "set": true, "source": true, ".": true, "eval": true, "exit": true, "ulimit": true,
	"umask": true, "trap": true, "unset": true, "readonly": true, "wait": true, ":": true,
}
