package logs

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
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
	// groups are alternatives, one of each must be there: the levels s
	// keeps (`"level":"X"`), a field's value as a number or a string.
	groups [][][]byte
	levels [][]byte // the group of levels; nil: any level
	none   bool     // s selects nothing (an unknown level)
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
		key := `"` + jsonText(k) + `":`
		if !plainValue(v) {
			p.needles = append(p.needles, []byte(key))
			continue
		}
		// The value is in the line, after its key, bare (a number, a
		// boolean, null) or quoted.
		if v != "" {
			p.needles = append(p.needles, []byte(jsonText(v)))
		}
		p.groups = append(p.groups, [][]byte{[]byte(key + jsonText(v)), []byte(key + `"` + jsonText(v) + `"`)})
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
		p.groups = append(p.groups, p.levels)
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
	for _, g := range p.groups {
		if !containsAny(line, g) {
			return false
		}
	}
	return true
}

func containsAny(line []byte, alts [][]byte) bool {
	for _, a := range alts {
		if bytes.Contains(line, a) {
			return true
		}
	}
	return false
}

// Find returns the last s.Limit records on disk that s selects, oldest
// first.
//
// The hour files are read newest first, as many at once as there are
// CPUs, and reading stops once Limit records are found; a search by trace
// id skips the files whose trace index says they lack it. Within a file a
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
	var traceHashed uint64
	if s.TraceID != "" {
		traceHashed = traceHash(s.TraceID)
	}
	for _, f := range files {
		// An hour file holds that hour's records only.
		start, _ := time.Parse(hourLayout, f.hour)
		if !s.Since.IsZero() && start.Add(time.Hour).Before(s.Since) {
			continue
		}
		if !s.Until.IsZero() && start.After(s.Until) {
			continue
		}
		if s.TraceID != "" && !d.mayHoldTrace(f.hour, traceHashed) {
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
//
// It reads the file in large blocks and finds the candidate lines in
// each with one search of the whole block for the prefilter's anchor
// (its longest needle), checking the rest of the prefilter on the lines
// the anchor is found in; then it decodes candidates from the newest back
// until it has Limit records, so a search decodes about Limit lines
// however many the file holds.
func scanFile(path string, s Search, p *prefilter) ([]Line, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil // pruned meanwhile
	}
	if err != nil {
		return nil, fmt.Errorf("logs: %w", err)
	}
	defer f.Close()
	var cands []candidate
	var lineAt func(candidate, []byte) ([]byte, error)
	if data, unmap, ok := mapFile(f); ok {
		// Mapped: the lines are searched in place, without copying the
		// file out of the page cache.
		defer unmap()
		cands = p.lines(data, 0, p.anchor(), nil)
		lineAt = func(c candidate, _ []byte) ([]byte, error) { return data[c.off : c.off+int64(c.n)], nil }
	} else {
		if cands, err = p.scan(f); err != nil {
			return nil, fmt.Errorf("logs: %s: %w", filepath.Base(path), err)
		}
		lineAt = func(c candidate, buf []byte) ([]byte, error) {
			buf = slices.Grow(buf[:0], c.n)[:c.n]
			_, err := f.ReadAt(buf, c.off)
			return buf, err
		}
	}
	var out []Line // newest first
	var line []byte
	for i := len(cands) - 1; i >= 0 && len(out) < s.Limit; i-- {
		if line, err = lineAt(cands[i], line); err != nil {
			return nil, fmt.Errorf("logs: %s: %w", filepath.Base(path), err)
		}
		var l Line
		if json.Unmarshal(line, &l) != nil {
			continue // a torn line
		}
		if s.Match(l) {
			out = append(out, l)
		}
	}
	slices.Reverse(out)
	return out, nil
}

// candidate is a line of a file that passed the prefilter.
type candidate struct {
	off int64
	n   int
}

const (
	scanBlock = 1 << 20
	// maxRecord bounds a line: a record holds a line of up to the
	// supervisor's 64 KiB, escaped, and its fields again; 16 MiB is far
	// more than any record written.
	maxRecord = 16 << 20
)

// scan returns the lines of r that pass the prefilter, in order.
func (p *prefilter) scan(r io.Reader) ([]candidate, error) {
	anchor := p.anchor()
	buf := make([]byte, scanBlock)
	var cands []candidate
	var base int64 // the file offset of buf[0]
	keep := 0      // bytes of an unfinished line at the start of buf
	for {
		n, err := io.ReadFull(r, buf[keep:])
		eof := errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)
		if err != nil && !eof {
			return nil, err
		}
		data := buf[:keep+n]
		end := bytes.LastIndexByte(data, '\n') + 1
		if eof {
			end = len(data) // a torn last line: its decoding fails
		}
		cands = p.lines(data[:end], base, anchor, cands)
		if eof {
			return cands, nil
		}
		if end == 0 { // a line longer than the buffer
			if len(buf) >= maxRecord {
				return nil, fmt.Errorf("a record longer than %d bytes at offset %d", maxRecord, base)
			}
			buf = append(buf, make([]byte, len(buf))...)
			keep = len(data)
			continue
		}
		keep = copy(buf, data[end:])
		base += int64(end)
	}
}

// anchor is the needle searched for in whole blocks: the longest, or the
// level's when it is the only condition and one level.
func (p *prefilter) anchor() []byte {
	var a []byte
	for _, n := range p.needles {
		if len(n) > len(a) {
			a = n
		}
	}
	if a == nil && len(p.levels) == 1 {
		a = p.levels[0]
	}
	return a
}

// lines appends the lines of block (whole lines, the last maybe without
// its newline) that pass the prefilter.
func (p *prefilter) lines(block []byte, base int64, anchor []byte, out []candidate) []candidate {
	add := func(start, end int) {
		if end > start && p.pass(block[start:end]) {
			out = append(out, candidate{off: base + int64(start), n: end - start})
		}
	}
	pos := 0
	for pos < len(block) {
		if anchor == nil {
			end := bytes.IndexByte(block[pos:], '\n')
			if end < 0 {
				end = len(block)
			} else {
				end += pos
			}
			add(pos, end)
			pos = end + 1
			continue
		}
		j := bytes.Index(block[pos:], anchor)
		if j < 0 {
			break
		}
		j += pos
		start := bytes.LastIndexByte(block[:j], '\n') + 1
		end := bytes.IndexByte(block[j:], '\n')
		if end < 0 {
			end = len(block)
		} else {
			end += j
		}
		add(start, end)
		pos = end + 1
	}
	return out
}
