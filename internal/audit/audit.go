// Package audit keeps the audit trail of a nubo system: one record per
// change made to it (a reload, a restart, a stop, a publish, an invocation
// or a redrive from the CLI, the console or MCP, a secret set or removed, a
// deploy), append-only and tamper-evident. Each record carries the SHA-256
// of the one before it, so that an edited, inserted or removed record
// breaks the chain at that place, and `nubo audit verify` says where.
//
// The trail is a JSON-lines file in the state directory. Both the engine
// and the CLI (secrets and deploys happen without an engine) append to it,
// so every append holds an exclusive flock on the file: two processes never
// interleave records or fork the chain.
package audit

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"
)

// File is the trail's name in the state directory.
const File = "audit.jsonl"

// lockName is the file every writer and copier of the trail locks: a
// file of its own, because a prune replaces the trail's file.
const lockName = "audit.lock"

// anchorName keeps the number and hash of the last record a prune removed,
// where the trail now begins: verify checks the first record against it.
const anchorName = "audit.anchor"

// ActorHeader carries who acts through the admin and platform APIs: the
// CLI, the console and MCP set it; a service's own calls do not, and are
// not audited (they are the system's traffic, not changes made to it).
const ActorHeader = "Nubo-Actor"

// Record is one change.
type Record struct {
	// Seq numbers the records from 1.
	Seq int64 `json:"seq"`
	// Time is when the change was made.
	Time time.Time `json:"time"`
	// Actor is who made it: "cli:alice", "mcp:claude", "engine".
	Actor string `json:"actor"`
	// Action is what kind of change: reload, restart, stop, publish,
	// invoke, redrive, silence, secret-set, secret-rm, deploy.
	Action string `json:"action"`
	// Target is what it was made to: a service, a queue, a spec file.
	Target string `json:"target,omitempty"`
	// Detail says more in one line; never a secret's value.
	Detail string `json:"detail,omitempty"`
	// Result is ok, failed, or started (a result follows).
	Result string `json:"result"`
	// Error is why it failed.
	Error string `json:"error,omitempty"`
	// Prev is the hash of the record before (empty for the first).
	Prev string `json:"prev"`
	// Hash is the SHA-256 of this record with Hash empty.
	Hash string `json:"hash"`
}

// Results.
const (
	OK     = "ok"
	Failed = "failed"
	// Started marks the record of a change written before it is made,
	// whose result another record gives (a deploy: the objects it applies
	// carry the started record's hash).
	Started = "started"
)

// Trail is the audit trail of one state directory.
type Trail struct {
	path string
	now  func() time.Time
}

// Open returns the trail of a state directory; the file is created with
// the first record.
func Open(stateDir string) *Trail {
	return &Trail{path: filepath.Join(stateDir, File), now: time.Now}
}

// Path is the trail's file.
func (t *Trail) Path() string { return t.path }

// Append adds a record, filling Seq, Time (when zero), Prev, Hash and Result
// (from err), and returns it.
func (t *Trail) Append(r Record, err error) (Record, error) {
	if r.Result == "" {
		r.Result = OK
		if err != nil {
			r.Result, r.Error = Failed, err.Error()
		}
	}
	if r.Time.IsZero() {
		r.Time = t.now()
	}
	r.Time = r.Time.UTC()
	unlock, err := t.lock(unix.LOCK_EX)
	if err != nil {
		return r, err
	}
	defer unlock()
	f, err := os.OpenFile(t.path, os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return r, fmt.Errorf("audit: %w", err)
	}
	defer f.Close()
	last, err := lastRecord(f)
	if err != nil {
		return r, err
	}
	if last.Seq == 0 {
		// An empty trail after a prune goes on from its anchor.
		if last, err = t.anchor(); err != nil {
			return r, err
		}
	}
	r.Seq, r.Prev = last.Seq+1, last.Hash
	r.Hash = ""
	r.Hash = hashOf(r)
	line, err := json.Marshal(r)
	if err != nil {
		return r, fmt.Errorf("audit: %w", err)
	}
	if _, err := f.Write(append(line, '\n')); err != nil {
		return r, fmt.Errorf("audit: %w", err)
	}
	return r, nil
}

// AnchorFile is the anchor's name in the state directory (see Prune).
const AnchorFile = anchorName

// Export returns the trail's file and its anchor (nil when there is none)
// as they are at one moment, under a shared lock: no record half-written,
// no prune between the two (a backup).
func (t *Trail) Export() (trail, anchor []byte, err error) {
	unlock, err := t.lock(unix.LOCK_SH)
	if err != nil {
		return nil, nil, err
	}
	defer unlock()
	trail, err = os.ReadFile(t.path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, nil, fmt.Errorf("audit: %w", err)
	}
	anchor, err = os.ReadFile(filepath.Join(filepath.Dir(t.path), anchorName))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, nil, fmt.Errorf("audit: %w", err)
	}
	return trail, anchor, nil
}

// hashOf is the SHA-256 of r's JSON with Hash empty.
func hashOf(r Record) string {
	r.Hash = ""
	b, _ := json.Marshal(r)
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// lastRecord reads the file's last record (the zero Record for an empty
// file), reading backwards from the end: the trail grows without bound.
func lastRecord(f *os.File) (Record, error) {
	size, err := f.Seek(0, io.SeekEnd)
	if err != nil || size == 0 {
		return Record{}, err
	}
	const chunk = 64 << 10
	var tail []byte
	for off := size; off > 0 && bytes.Count(tail, []byte{'\n'}) < 2; {
		n := min(int64(chunk), off)
		off -= n
		buf := make([]byte, n)
		if _, err := f.ReadAt(buf, off); err != nil {
			return Record{}, fmt.Errorf("audit: %w", err)
		}
		tail = append(buf, tail...)
	}
	lines := bytes.Split(bytes.TrimRight(tail, "\n"), []byte{'\n'})
	var r Record
	if err := json.Unmarshal(lines[len(lines)-1], &r); err != nil {
		return Record{}, fmt.Errorf("audit: the last record of %s does not read (%v): run nubo audit verify", f.Name(), err)
	}
	return r, nil
}

// Query selects records.
type Query struct {
	Since  time.Time
	Action string
	Limit  int // the last N; 0: all
}

// Read returns the records q selects, oldest first. A missing trail has
// no records.
func (t *Trail) Read(q Query) ([]Record, error) {
	f, sc, err := t.scan()
	if f == nil {
		return nil, err
	}
	defer f.Close()
	var out []Record
	for sc.Scan() {
		var r Record
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			continue // verify reports it
		}
		if (!q.Since.IsZero() && r.Time.Before(q.Since)) || (q.Action != "" && r.Action != q.Action) {
			continue
		}
		out = append(out, r)
	}
	if q.Limit > 0 && len(out) > q.Limit {
		out = out[len(out)-q.Limit:]
	}
	return out, sc.Err()
}

// scan opens the trail for reading line by line; a missing trail is a nil
// file and no error.
func (t *Trail) scan() (*os.File, *bufio.Scanner, error) {
	f, err := os.Open(t.path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("audit: %w", err)
	}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	return f, sc, nil
}

// BreakError says where the chain breaks.
type BreakError struct {
	Line   int
	Seq    int64
	Reason string
}

func (e *BreakError) Error() string {
	return fmt.Sprintf("line %d (record %d): %s", e.Line, e.Seq, e.Reason)
}

// Verify checks every record's hash and link, and returns how many records
// hold, or a *BreakError at the first that does not.
func (t *Trail) Verify() (int, error) {
	f, sc, err := t.scan()
	if f == nil {
		return 0, err
	}
	defer f.Close()
	prev, err := t.anchor()
	if err != nil {
		return 0, err
	}
	n := 0
	for sc.Scan() {
		n++
		var r Record
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			return n - 1, &BreakError{Line: n, Seq: prev.Seq + 1, Reason: "not a record: " + err.Error()}
		}
		switch {
		case r.Hash != hashOf(r):
			return n - 1, &BreakError{Line: n, Seq: r.Seq, Reason: "its content does not match its hash: it was changed"}
		case r.Prev != prev.Hash:
			return n - 1, &BreakError{Line: n, Seq: r.Seq, Reason: "it does not follow the record before: one was removed, inserted or changed"}
		case r.Seq != prev.Seq+1:
			return n - 1, &BreakError{Line: n, Seq: r.Seq, Reason: fmt.Sprintf("it is numbered %d after %d", r.Seq, prev.Seq)}
		}
		prev = r
	}
	return n, sc.Err()
}

// Actor names the person running this process: "cli:alice".
func Actor(via string) string {
	name := "unknown"
	if u, err := user.Current(); err == nil {
		name = u.Username
	}
	return via + ":" + name
}
