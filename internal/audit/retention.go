package audit

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"
)

// lock takes the trail's lock file (LOCK_EX to write, LOCK_SH to copy)
// and returns its release.
func (t *Trail) lock(how int) (func(), error) {
	dir := filepath.Dir(t.path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	f, err := os.OpenFile(filepath.Join(dir, lockName), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	if err := unix.Flock(int(f.Fd()), how); err != nil {
		f.Close()
		return nil, fmt.Errorf("audit: lock %s: %w", f.Name(), err)
	}
	return func() { f.Close() }, nil
}

// anchorRecord is what the anchor file holds.
type anchorRecord struct {
	// Seq and Hash are the last removed record's.
	Seq  int64  `json:"seq"`
	Hash string `json:"hash"`
	// Pruned is when; Before the cut-off.
	Pruned time.Time `json:"pruned"`
	Before time.Time `json:"before"`
}

// anchor returns the last pruned record's number and hash (the zero
// Record when nothing was ever pruned).
func (t *Trail) anchor() (Record, error) {
	data, err := os.ReadFile(filepath.Join(filepath.Dir(t.path), anchorName))
	if errors.Is(err, fs.ErrNotExist) {
		return Record{}, nil
	}
	if err != nil {
		return Record{}, fmt.Errorf("audit: %w", err)
	}
	var a anchorRecord
	if err := json.Unmarshal(data, &a); err != nil {
		return Record{}, fmt.Errorf("audit: %s: %w", anchorName, err)
	}
	return Record{Seq: a.Seq, Hash: a.Hash}, nil
}

// Prune removes the records older than before (the logs' retention), and
// returns how many. The trail goes on where it was: the anchor keeps the
// last removed record's number and hash, which the first remaining one
// names, so that verify still finds a record removed from the start. The
// file is replaced whole under the lock; nothing is appended meanwhile.
func (t *Trail) Prune(before time.Time) (int, error) {
	unlock, err := t.lock(unix.LOCK_EX)
	if err != nil {
		return 0, err
	}
	defer unlock()
	f, sc, err := t.scan()
	if f == nil {
		return 0, err
	}
	defer f.Close()
	tmp, err := os.CreateTemp(filepath.Dir(t.path), ".audit-*")
	if err != nil {
		return 0, fmt.Errorf("audit: %w", err)
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	var last Record
	removed, keeping := 0, false
	w := bufio.NewWriter(tmp)
	for sc.Scan() {
		if !keeping {
			var r Record
			if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
				return 0, fmt.Errorf("audit: prune: a line does not read (%v): run nubo audit verify", err)
			}
			if r.Time.Before(before) {
				last, removed = r, removed+1
				continue
			}
			keeping = true
		}
		w.Write(sc.Bytes())
		w.WriteByte('\n')
	}
	if err := sc.Err(); err != nil {
		return 0, fmt.Errorf("audit: %w", err)
	}
	if removed == 0 {
		return 0, nil
	}
	if err := w.Flush(); err != nil {
		return 0, fmt.Errorf("audit: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		return 0, fmt.Errorf("audit: %w", err)
	}
	// The anchor first: a crash between the two leaves an anchor past
	// records still there, which verify reports, never a silent gap.
	a, _ := json.Marshal(anchorRecord{Seq: last.Seq, Hash: last.Hash, Pruned: time.Now().UTC(), Before: before.UTC()})
	anchor := filepath.Join(filepath.Dir(t.path), anchorName)
	if err := os.WriteFile(anchor+".tmp", a, 0o600); err != nil {
		return 0, fmt.Errorf("audit: %w", err)
	}
	if err := os.Rename(anchor+".tmp", anchor); err != nil {
		return 0, fmt.Errorf("audit: %w", err)
	}
	if err := os.Rename(tmp.Name(), t.path); err != nil {
		return 0, fmt.Errorf("audit: %w", err)
	}
	return removed, nil
}
