package logs

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

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

// prefilter is what a record's raw JSON line must contain for s to
// select it: a line without every needle, or without any of levels, is
// skipped undecoded. It may let through lines that do not match (Match
// decides those), never hold back one that does.
type prefilter struct {
	needles [][]byte
	levels  [][]byte // `"level":"X"` for each level s keeps; nil: any
	none    bool     // s selects nothing (an unknown level)
}

func (s Search) prefilter() prefilter {
	var p prefilter
	str := func(key, v string) []byte { return []byte(`"` + key + `":"` + jsonText(v) + `"`) }
	if s.Grep != "" {
		p.needles = append(p.needles, []byte(jsonText(s.Grep)))
	}
	if s.TraceID != "" {
		p.needles = append(p.needles, str("traceId", s.TraceID))
	}
	if s.Service != "" {
		p.needles = append(p.needles, str("service", s.Service))
	}
	for k, v := range s.Where {
		p.needles = append(p.needles, []byte(`"`+jsonText(k)+`":`))
		if plainValue(v) {
			p.needles = append(p.needles, []byte(jsonText(v)))
		}
	}
	if s.Level != "" {
		want, known := severity[normalLevel(s.Level)]
		if !known {
			p.none = true
		}
		for l, n := range severity {
			if n >= want {
				p.levels = append(p.levels, str("level", l))
			}
		}
	}
	return p
}

// plainValue reports whether a field value v, as fmt.Sprint writes it,
// is also how the record's JSON writes it: not a number Sprint writes
// with an exponent (1e+06) or a map or list.
func plainValue(v string) bool {
	if strings.HasPrefix(v, "map[") || strings.HasPrefix(v, "[") {
		return false
	}
	if strings.ContainsAny(v, "eE") {
		if _, err := strconv.ParseFloat(v, 64); err == nil {
			return false
		}
	}
	return true
}

func (p *prefilter) pass(line []byte) bool {
	for _, n := range p.needles {
		if !bytes.Contains(line, n) {
			return false
		}
	}
	if p.levels == nil {
		return true
	}
	for _, l := range p.levels {
		if bytes.Contains(line, l) {
			return true
		}
	}
	return false
}

// Find returns the last s.Limit records on disk that s selects, oldest
// first.
//
// The hour files are read newest first, as many at once as there are
// CPUs, and reading stops once Limit records are found. Within a file a
// line is checked on its raw bytes (the text, trace id, service, level
// and field values as its JSON writes them) and decoded only when it can
// match.
func (d *Disk) Find(s Search) ([]Line, error) {
	if s.Limit <= 0 {
		s.Limit = 1000
	}
	p := s.prefilter()
	if p.none {
		return nil, nil
	}
	files, err := d.files()
	if err != nil {
		return nil, err
	}
	var sel []string // oldest first
	for _, f := range files {
		// An hour file holds that hour's records only.
		start, _ := time.Parse(hourLayout, f.hour)
		if !s.Since.IsZero() && start.Add(time.Hour).Before(s.Since) {
			continue
		}
		if !s.Until.IsZero() && start.After(s.Until) {
			continue
		}
		sel = append(sel, filepath.Join(d.dir, f.name))
	}
	found := make([][]Line, len(sel))
	errs := make([]error, len(sel))
	workers := max(runtime.GOMAXPROCS(0), 1)
	have, first := 0, len(sel)
	for hi := len(sel); hi > 0 && have < s.Limit; hi -= workers {
		lo := max(0, hi-workers)
		var wg sync.WaitGroup
		for i := lo; i < hi; i++ {
			wg.Go(func() { found[i], errs[i] = scanFile(sel[i], s, &p) })
		}
		wg.Wait()
		if err := errors.Join(errs[lo:hi]...); err != nil {
			return nil, err
		}
		for i := lo; i < hi; i++ {
			have += len(found[i])
		}
		first = lo
	}
	var out []Line
	for _, f := range found[first:] {
		out = append(out, f...)
	}
	if len(out) > s.Limit {
		out = out[len(out)-s.Limit:]
	}
	return out, nil
}

// scanFile returns the last s.Limit records of one file that s selects.
func scanFile(path string, s Search, p *prefilter) ([]Line, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil // pruned meanwhile
	}
	if err != nil {
		return nil, fmt.Errorf("logs: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	// A record holds a line of up to the supervisor's 64 KiB, escaped, and
	// its fields again: 4 MiB is more than any record written.
	sc.Buffer(make([]byte, 256<<10), 4<<20)
	var out []Line
	for sc.Scan() {
		line := sc.Bytes()
		if !p.pass(line) {
			continue
		}
		var l Line
		if json.Unmarshal(line, &l) != nil {
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
	if len(out) > s.Limit {
		out = out[len(out)-s.Limit:]
	}
	return out, sc.Err()
}
