package engine

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"
)

// BuildError is a build that failed, with its command and exit code; its
// output has been streamed already.
type BuildError struct {
	Service string
	Command string
	Code    int
	Err     error
}

func (e *BuildError) Error() string {
	if e.Code > 0 {
		return fmt.Sprintf("service %q: build failed with exit code %d: %s", e.Service, e.Code, e.Command)
	}
	return fmt.Sprintf("service %q: build failed: %s: %v", e.Service, e.Command, e.Err)
}

func (e *BuildError) Unwrap() error { return e.Err }

// runBuild runs a build command through sh -c in dir, streaming each line of
// its output to line. Cancelling ctx kills the whole process group.
// track, when not nil, is told the build's process group when it starts
// (true) and ends (false).
func runBuild(ctx context.Context, service, command, dir string, env []string, line func(string), track func(pgid int, alive bool)) error {
	cmd := exec.Command("/bin/sh", "-c", command)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	// Own process group, and killed if nubo dies, like the services.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return &BuildError{Service: service, Command: command, Err: err}
	}
	cmd.Stderr = cmd.Stdout // one pipe keeps the order the tool wrote in
	if err := cmd.Start(); err != nil {
		return &BuildError{Service: service, Command: command, Err: err}
	}
	if track != nil {
		track(cmd.Process.Pid, true)
		defer track(cmd.Process.Pid, false)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		scanLines(stdout, line)
	}()
	done := make(chan struct{})
	go func() {
		select {
		case <-ctx.Done():
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
			select {
			case <-done:
			case <-time.After(5 * time.Second):
				_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			}
		case <-done:
		}
	}()
	wg.Wait()
	err = cmd.Wait()
	close(done)
	if err == nil {
		return nil
	}
	if ctx.Err() != nil {
		return &BuildError{Service: service, Command: command, Err: ctx.Err()}
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return &BuildError{Service: service, Command: command, Code: ee.ExitCode(), Err: err}
	}
	return &BuildError{Service: service, Command: command, Err: err}
}

// maxLine bounds one line of output; longer lines are cut into pieces.
const maxLine = 64 << 10

func scanLines(r io.Reader, line func(string)) {
	br := bufio.NewReaderSize(r, maxLine)
	for {
		b, isPrefix, err := br.ReadLine()
		if len(b) > 0 || (err == nil && !isPrefix) {
			line(string(b))
		}
		if err != nil {
			return
		}
	}
}
