package engine

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"
)

// lockFile is the name of the engine's lock inside the state directory.
const lockFile = "engine.lock"

// LockInfo is what a running engine writes into its lock, so that a second
// one can say who holds it.
type LockInfo struct {
	PID     int       `json:"pid"`
	Console string    `json:"console"`
	Spec    string    `json:"spec"`
	Started time.Time `json:"started"`
}

// ErrLocked is returned (wrapped in a *LockedError) when another engine holds
// the state directory.
var ErrLocked = errors.New("state directory is in use")

// LockedError names the engine holding the state directory.
type LockedError struct {
	Dir    string
	Holder LockInfo
}

func (e *LockedError) Error() string {
	if e.Holder.PID == 0 {
		return fmt.Sprintf("another nubo up is running on %s", e.Dir)
	}
	return fmt.Sprintf("another nubo up is running on %s: pid %d, console %s, since %s (stop it with nubo down, or use another local.stateDir)",
		e.Dir, e.Holder.PID, e.Holder.Console, e.Holder.Started.Format(time.RFC3339))
}

func (e *LockedError) Unwrap() error { return ErrLocked }

// stateLock is an flock on the state directory's lock file: the kernel drops
// it when the process dies, so a crashed engine never leaves a stale lock.
type stateLock struct {
	f *os.File
}

func lockStateDir(dir string, info LockInfo) (*stateLock, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create state directory: %w", err)
	}
	path := filepath.Join(dir, lockFile)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		defer f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			le := &LockedError{Dir: dir}
			if data, rerr := os.ReadFile(path); rerr == nil {
				_ = json.Unmarshal(data, &le.Holder)
			}
			return nil, le
		}
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	data, _ := json.Marshal(info)
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt(append(data, '\n'), 0)
	}
	return &stateLock{f: f}, nil
}

// release empties and unlocks the lock file. Safe to call twice.
func (l *stateLock) release() {
	if l == nil || l.f == nil {
		return
	}
	_ = l.f.Truncate(0)
	_ = unix.Flock(int(l.f.Fd()), unix.LOCK_UN)
	_ = l.f.Close()
	l.f = nil
}

// ReadLock returns the engine recorded in dir's lock, if one holds it now.
func ReadLock(dir string) (LockInfo, bool) {
	path := filepath.Join(dir, lockFile)
	f, err := os.Open(path)
	if err != nil {
		return LockInfo{}, false
	}
	defer f.Close()
	// If we can take the lock, nobody holds it.
	if err := unix.Flock(int(f.Fd()), unix.LOCK_SH|unix.LOCK_NB); err == nil {
		_ = unix.Flock(int(f.Fd()), unix.LOCK_UN)
		return LockInfo{}, false
	}
	var info LockInfo
	data, err := os.ReadFile(path)
	if err != nil || json.Unmarshal(data, &info) != nil {
		return LockInfo{}, true
	}
	return info, true
}

// update rewrites the holder's record, e.g. once the console's real address
// is known.
func (l *stateLock) update(info LockInfo) {
	if l == nil || l.f == nil {
		return
	}
	data, _ := json.Marshal(info)
	if err := l.f.Truncate(0); err == nil {
		_, _ = l.f.WriteAt(append(data, '\n'), 0)
	}
}

// HoldStateDir takes dir's lock for work done without an engine (nubo
// restore), so that no nubo up starts on it meanwhile, and returns its
// release. A running engine's lock fails it with a *LockedError.
func HoldStateDir(dir, why string) (release func(), err error) {
	l, err := lockStateDir(dir, LockInfo{PID: os.Getpid(), Spec: why, Started: time.Now()})
	if err != nil {
		return nil, err
	}
	return l.release, nil
}
