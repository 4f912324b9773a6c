package functions

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

	"github.com/nubo-dev/nubo/internal/supervisor"
)

// BuildStream is the stream name of build output lines passed to
// Config.Lines when the component runs builds itself.
const BuildStream = "build"

// BuildError is a build that failed, with its command and exit code; its
// output has been streamed already.
type BuildError struct {
	Function string
	Command  string
	Code     int
	Err      error
}

func (e *BuildError) Error() string {
	if e.Code > 0 {
		return fmt.Sprintf("function %q: build failed with exit code %d: %s", e.Function, e.Code, e.Command)
	}
	return fmt.Sprintf("function %q: build failed: %s: %v", e.Function, e.Command, e.Err)
}

func (e *BuildError) Unwrap() error { return e.Err }

// runBuild runs a function's build through Config.Build, or itself.
func (f *Functions) runBuild(ctx context.Context, name, command, dir string, env []string) error {
	if f.cfg.Build != nil {
		return f.cfg.Build(ctx, name, command, dir, env)
	}
	return f.build(ctx, name, command, dir, env)
}

// build runs command through sh -c in dir, streaming its output lines to
// Config.Lines (replica -1, stream "build"). The process is a group of its
// own, killed when ctx ends, and gets Pdeathsig from a thread that stays
// locked until it is reaped (see the supervisor's spawner for why).
func (f *Functions) build(ctx context.Context, name, command, dir string, env []string) error {
	cmd := exec.Command("/bin/sh", "-c", command)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = buildProcAttr()
	// A pipe of our own, so that Wait does not close it before the output
	// is read; read until every writer (the build and what it forked) is
	// done.
	out, w, err := os.Pipe()
	if err != nil {
		return &BuildError{Function: name, Command: command, Err: err}
	}
	defer out.Close()
	cmd.Stdout, cmd.Stderr = w, w // one pipe keeps the order the tool wrote in

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
		return &BuildError{Function: name, Command: command, Err: err}
	}
	pid := cmd.Process.Pid
	if f.cfg.Track != nil {
		f.cfg.Track(pid, true)
		defer f.cfg.Track(pid, false)
	}
	stop := context.AfterFunc(ctx, func() {
		_ = syscall.Kill(-pid, syscall.SIGTERM)
		time.AfterFunc(5*time.Second, func() { _ = syscall.Kill(-pid, syscall.SIGKILL) })
	})
	defer stop()
	sc := bufio.NewScanner(out)
	sc.Buffer(make([]byte, 0, 64<<10), supervisor.MaxLineLength)
	for sc.Scan() {
		if f.cfg.Lines != nil {
			f.cfg.Lines.Line(name, -1, BuildStream, sc.Bytes())
		}
	}
	_, _ = io.Copy(io.Discard, out) // after a line too long to scan
	err = <-errc
	if err == nil {
		return nil
	}
	if ctx.Err() != nil {
		return &BuildError{Function: name, Command: command, Err: ctx.Err()}
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return &BuildError{Function: name, Command: command, Code: ee.ExitCode(), Err: err}
	}
	return &BuildError{Function: name, Command: command, Err: err}
}
