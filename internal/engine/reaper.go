package engine

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/nubo-dev/nubo/internal/procgroup"
)

// The reaper makes "no process of the system outlives nubo" hold even after
// kill -9 of nubo. Pdeathsig reaches only a replica's main process; what that
// process forked lives on unless something kills its process group. So nubo
// starts a small watchdog (its own binary, re-executed) in a session of its
// own, and tells it over a pipe which process groups exist. When nubo dies,
// the kernel closes the pipe; the reaper sees EOF and kills every group it
// was told about, then exits.

// reaper is nubo's end of the watchdog.
type reaper struct {
	cmd *exec.Cmd
	mu  sync.Mutex // guards w
	w   io.WriteCloser
}

// startReaper starts argv (nubo's own binary with the hidden reaper command).
func startReaper(argv []string) (*reaper, error) {
	cmd := exec.Command(argv[0], argv[1:]...)
	// A session of its own: the terminal's Ctrl-C must not reach it, and it
	// must not die with nubo (so no Pdeathsig).
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	w, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start reaper: %w", err)
	}
	return &reaper{cmd: cmd, w: w}, nil
}

func (r *reaper) send(op byte, pgid int) {
	if r == nil || pgid <= 0 {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.w != nil {
		_, _ = fmt.Fprintf(r.w, "%c%d\n", op, pgid)
	}
}

// track registers a process group to kill if nubo dies.
func (r *reaper) track(pgid int) { r.send('+', pgid) }

// trackCgroups tells the reaper the engine's directory of cgroups: if nubo
// dies, every process in it is killed, escaped ones included.
func (r *reaper) trackCgroups(dir string) {
	if r == nil || dir == "" || strings.ContainsAny(dir, "\n") {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.w != nil {
		_, _ = fmt.Fprintf(r.w, "c%s\n", dir)
	}
}

// untrack forgets a group that has been stopped.
func (r *reaper) untrack(pgid int) { r.send('-', pgid) }

// close ends the reaper after a clean stop: everything has been stopped, so
// it has nothing left to kill.
func (r *reaper) close() {
	if r == nil {
		return
	}
	r.mu.Lock()
	w := r.w
	r.w = nil
	r.mu.Unlock()
	if w != nil {
		_, _ = io.WriteString(w, "q\n")
		_ = w.Close()
	}
	done := make(chan struct{})
	go func() { _ = r.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		_ = r.cmd.Process.Kill()
	}
}

// RunReaper is the reaper process: it reads +PGID and -PGID lines from in
// until "q" (a clean stop: exit) or EOF (nubo died: kill every tracked
// group, SIGTERM then SIGKILL after grace).
func RunReaper(in io.Reader, grace time.Duration) {
	signal.Ignore(syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	groups := map[int]bool{}
	var cgroups []string
	sc := bufio.NewScanner(in)
	for sc.Scan() {
		line := sc.Text()
		if line == "q" {
			return
		}
		if len(line) < 2 {
			continue
		}
		if line[0] == 'c' {
			cgroups = append(cgroups, line[1:])
			continue
		}
		pgid, err := strconv.Atoi(line[1:])
		if err != nil || pgid <= 1 {
			continue
		}
		switch line[0] {
		case '+':
			groups[pgid] = true
		case '-':
			delete(groups, pgid)
		}
	}
	// What escaped its process group is in the cgroups; it is killed
	// after the groups have had their grace.
	defer func() {
		for _, dir := range cgroups {
			_ = procgroup.KillDir(dir)
		}
	}()
	for pgid := range groups {
		_ = syscall.Kill(-pgid, syscall.SIGTERM)
	}
	deadline := time.Now().Add(grace)
	for time.Now().Before(deadline) {
		alive := false
		for pgid := range groups {
			if syscall.Kill(-pgid, 0) == nil {
				alive = true
			}
		}
		if !alive {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	for pgid := range groups {
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
	}
}
