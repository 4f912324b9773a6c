package logs

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"
)

// Disk keeps records on disk, one NDJSON file per hour under its folder
// (2026-12-07T17.ndjson), so that logs survive restarts and are searched
// past the memory ring. Files older than the retention go, and the oldest
// go first when the folder passes its size bound. A record is written
// whole or not at all, and a torn last line (a crash mid-write) is skipped
// on read.
type Disk struct {
	dir       string
	retention time.Duration
	maxBytes  int64
	now       func() time.Time

	mu   sync.Mutex // guards the fields below
	f    *os.File
	hour string
	buf  []byte
	// traces are the hashes of the trace ids of the hour being written,
	// its trace index once it is closed (traceindex.go).
	traces []uint64
	// partial says the hour's file held records before it was opened
	// (a restart within the hour, a late record of an earlier hour):
	// traces lack theirs, so the hour gets no trace index.
	partial bool
}

// DefaultDiskBytes bounds the log folder when the spec says nothing.
const DefaultDiskBytes = 1 << 30

const hourLayout = "2006-01-02T15"

// OpenDisk opens (creating) the log folder and removes what is past
// retention or past maxBytes (DefaultDiskBytes when <= 0).
func OpenDisk(dir string, retention time.Duration, maxBytes int64) (*Disk, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("logs: %w", err)
	}
	if maxBytes <= 0 {
		maxBytes = DefaultDiskBytes
	}
	d := &Disk{dir: dir, retention: retention, maxBytes: maxBytes, now: time.Now}
	if err := d.prune(); err != nil {
		return nil, err
	}
	return d, nil
}

// Append writes a record to the file of its hour.
func (d *Disk) Append(l Line) error {
	if d == nil {
		return nil
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	hour := l.Time.UTC().Format(hourLayout)
	if d.f == nil || hour != d.hour {
		if d.f != nil {
			_ = d.f.Close()
			d.f = nil
			if err := d.writeIndexLocked(); err != nil {
				return err
			}
		}
		f, err := os.OpenFile(filepath.Join(d.dir, hour+".ndjson"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
		if err != nil {
			return fmt.Errorf("logs: %w", err)
		}
		d.f, d.hour = f, hour
		if info, err := f.Stat(); err != nil || info.Size() > 0 {
			// Its index, if any, no longer covers it.
			d.partial = true
			if err := removeIndex(d.dir, hour); err != nil {
				return err
			}
		}
		// A new hour is the moment to drop what has aged out.
		if err := d.pruneLocked(); err != nil {
			return err
		}
	}
	var err error
	d.buf, err = appendJSON(d.buf[:0], l)
	if err != nil {
		return err
	}
	if _, err = d.f.Write(d.buf); err != nil {
		return err
	}
	d.noteTrace(l.TraceID)
	return nil
}

func appendJSON(buf []byte, l Line) ([]byte, error) {
	b, err := json.Marshal(l)
	if err != nil {
		return buf, fmt.Errorf("logs: %w", err)
	}
	return append(append(buf, b...), '\n'), nil
}

// Close closes the current file.
func (d *Disk) Close() error {
	if d == nil {
		return nil
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.f == nil {
		return nil
	}
	err := d.f.Close()
	d.f = nil
	return errors.Join(err, d.writeIndexLocked())
}

func (d *Disk) prune() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.pruneLocked()
}

// pruneLocked removes the files past retention, then the oldest until the
// folder fits maxBytes; the file being written stays.
func (d *Disk) pruneLocked() error {
	files, err := d.files()
	if err != nil {
		return err
	}
	var total int64
	for _, f := range files {
		total += f.size
	}
	cutoff := d.now().Add(-d.retention).UTC().Format(hourLayout)
	for _, f := range files { // oldest first
		if f.hour == d.hour {
			break
		}
		old := d.retention > 0 && f.hour < cutoff
		if !old && total <= d.maxBytes {
			break
		}
		if err := os.Remove(filepath.Join(d.dir, f.name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("logs: %w", err)
		}
		if err := removeIndex(d.dir, f.hour); err != nil {
			return err
		}
		total -= f.size
	}
	return nil
}

type segment struct {
	name, hour string
	size       int64
}

// files lists the hour files, oldest first.
func (d *Disk) files() ([]segment, error) {
	entries, err := os.ReadDir(d.dir)
	if err != nil {
		return nil, fmt.Errorf("logs: %w", err)
	}
	var out []segment
	for _, e := range entries {
		hour, ok := strings.CutSuffix(e.Name(), ".ndjson")
		if !ok || e.IsDir() {
			continue
		}
		if _, err := time.Parse(hourLayout, hour); err != nil {
			continue
		}
		info, err := e.Info()
		if err != nil {
			continue
		}
		out = append(out, segment{name: e.Name(), hour: hour, size: info.Size()})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].hour < out[j].hour })
	return out, nil
}

// jsonText is s as it appears inside a JSON string.
func jsonText(s string) string {
	b, _ := json.Marshal(s)
	return string(b[1 : len(b)-1])
}
