package logs

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
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
		}
		f, err := os.OpenFile(filepath.Join(d.dir, hour+".ndjson"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
		if err != nil {
			return fmt.Errorf("logs: %w", err)
		}
		d.f, d.hour = f, hour
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
	_, err = d.f.Write(d.buf)
	return err
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
	return err
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

// Search selects records on disk; the zero value matches every record.
type Search struct {
	Service string
	Since   time.Time
	Until   time.Time
	// Level keeps records of this level or more severe (debug < info <
	// warn < error); records without a level pass only an empty Level.
	Level string
	// Grep keeps records whose text contains it.
	Grep string
	// Where keeps records whose fields have these values (as text).
	Where map[string]string
	// TraceID keeps the records of one trace.
	TraceID string
	// Limit keeps the last N matches; 0 keeps 1000.
	Limit int
}

var severity = map[string]int{"debug": 0, "info": 1, "warn": 2, "error": 3}

// KnownLevel reports whether a level can be searched for.
func KnownLevel(l string) bool {
	_, ok := severity[normalLevel(l)]
	return ok
}

// Match reports whether l is selected by s.
func (s Search) Match(l Line) bool {
	switch {
	case s.Service != "" && l.Service != s.Service,
		!s.Since.IsZero() && l.Time.Before(s.Since),
		!s.Until.IsZero() && l.Time.After(s.Until),
		s.Grep != "" && !strings.Contains(l.Text, s.Grep),
		s.TraceID != "" && l.TraceID != s.TraceID:
		return false
	}
	if s.Level != "" {
		want, known := severity[normalLevel(s.Level)]
		got, ok := severity[l.Level]
		if !known || !ok || got < want {
			return false
		}
	}
	for k, v := range s.Where {
		f, ok := l.Fields[k]
		if !ok || fmt.Sprint(f) != v {
			return false
		}
	}
	return true
}

// Find returns the last s.Limit records on disk that s selects, oldest
// first.
func (d *Disk) Find(s Search) ([]Line, error) {
	if s.Limit <= 0 {
		s.Limit = 1000
	}
	files, err := d.files()
	if err != nil {
		return nil, err
	}
	var out []Line
	for _, f := range files {
		// An hour file holds that hour's records only.
		end, _ := time.Parse(hourLayout, f.hour)
		if !s.Since.IsZero() && end.Add(time.Hour).Before(s.Since) {
			continue
		}
		if !s.Until.IsZero() && end.After(s.Until) {
			continue
		}
		if out, err = d.scan(filepath.Join(d.dir, f.name), s, out); err != nil {
			return nil, err
		}
		if len(out) > 4*s.Limit {
			out = slices.Delete(out, 0, len(out)-s.Limit)
		}
	}
	if len(out) > s.Limit {
		out = out[len(out)-s.Limit:]
	}
	return out, nil
}

func (d *Disk) scan(path string, s Search, out []Line) ([]Line, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return out, nil // pruned meanwhile
	}
	if err != nil {
		return out, fmt.Errorf("logs: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	// A record holds a line of up to the supervisor's 64 KiB, escaped, and
	// its fields again: 4 MiB is more than any record written.
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	for sc.Scan() {
		// Cheap checks on the raw line first: most searches are by text.
		if s.Grep != "" && !strings.Contains(sc.Text(), jsonText(s.Grep)) {
			continue
		}
		var l Line
		if json.Unmarshal(sc.Bytes(), &l) != nil {
			continue // a torn line
		}
		if s.Match(l) {
			out = append(out, l)
			// Only the last Limit are answered: keep memory bounded.
			if len(out) >= 2*s.Limit {
				out = slices.Delete(out, 0, len(out)-s.Limit)
			}
		}
	}
	return out, sc.Err()
}

// jsonText is s as it appears inside a JSON string.
func jsonText(s string) string {
	b, _ := json.Marshal(s)
	return string(b[1 : len(b)-1])
}
