package supervisor

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"syscall"
	"time"
)

// BuildError is a build that failed, with its command and exit code; its
// output has been streamed already.
type BuildError struct {
	// Name says whose build it is: `service "users"`, `function "resize"`.
	Name    string
	Command string
	Code    int
	Err     error
}

func (e *BuildError) Error() string {
	if e.Code > 0 {
		return fmt.Sprintf("%s: build failed with exit code %d: %s", e.Name, e.Code, e.Command)
	}
	return fmt.Sprintf("%s: build failed: %s: %v", e.Name, e.Command, e.Err)
}

func (e *BuildError) Unwrap() error { return e.Err }

// RunBuild runs a one-off command (a service's or function's build) through
// sh -c in dir, giving each line of its output, stdout and stderr in the
// order written, to line. Like a replica, it is a process group of its own
// that gets Pdeathsig from a thread that stays locked until it is reaped (see
// spawner), and ctx's end kills the group: SIGTERM, then SIGKILL after 5s.
// track, when not nil, is told the group when it starts and ends (the
// engine's reaper). name says whose build it is, for the error.
func RunBuild(ctx context.Context, name, command, dir string, env []string, line func([]byte), track func(pgid int, alive bool)) error {
	cmd := exec.Command("/bin/sh", "-c", command)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = sysProcAttr()
	// A pipe of our own, so that Wait does not close it before the output
	// is read: it is read until every writer (the build and what it
	// forked) is done.
	out, w, err := os.Pipe()
	if err != nil {
		return &BuildError{Name: name, Command: command, Err: err}
	}
	defer out.Close()
	cmd.Stdout, cmd.Stderr = w, w

	errc := make(chan error, 1)
	started := make(chan error, 1)
	go func() {
		// Locked and never unlocked: the thread ends with this goroutine,
		// after the build has been reaped, so Pdeathsig fires only if nubo
		// dies.
		runtime.LockOSThread()
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		errc <- cmd.Wait()
	}()
	err = <-started
	w.Close()
	if err != nil {
		return &BuildError{Name: name, Command: command, Err: err}
	}
	pid := cmd.Process.Pid
	if track != nil {
		track(pid, true)
		defer track(pid, false)
	}
	stop := context.AfterFunc(ctx, func() {
		_ = syscall.Kill(-pid, syscall.SIGTERM)
		time.AfterFunc(5*time.Second, func() { _ = syscall.Kill(-pid, syscall.SIGKILL) })
	})
	defer stop()
	sc := bufio.NewScanner(out)
	sc.Buffer(make([]byte, 0, 64<<10), MaxLineLength)
	for sc.Scan() {
		if line != nil {
			line(sc.Bytes())
		}
	}
	_, _ = io.Copy(io.Discard, out) // after a line too long to scan
	err = <-errc
	if err == nil {
		return nil
	}
	if ctx.Err() != nil {
		return &BuildError{Name: name, Command: command, Err: ctx.Err()}
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return &BuildError{Name: name, Command: command, Code: ee.ExitCode(), Err: err}
	}
	return &BuildError{Name: name, Command: command, Err: err}
}
