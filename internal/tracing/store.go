package tracing

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Store defaults, documented in docs/observability.md.
const (
	// DefaultRetention is how long spans are kept.
	DefaultRetention = 72 * time.Hour
	// DefaultMaxBytes bounds the trace folder.
	DefaultMaxBytes = 256 << 20
	// segmentAge and the segment size bound when a new segment file
	// starts: what age and size pruning remove at once.
	segmentAge = time.Hour
	// maxSegments is how many segments the size bound is cut into.
	maxSegments = 16
)

// Store keeps spans on disk in append-only segment files of JSON lines
// (one segment an hour, or smaller: a sixteenth of the size bound), with an
// index in memory, rebuilt from the files at open, of what a search needs
// (trace, service, operation, start, duration, error, place in the file).
// A search walks the index from the newest span back and reads a span from
// disk only to check attributes or to return it. Whole segments go when
// they pass the retention or the folder passes its size bound, oldest
// first. It is safe for concurrent use.
type Store struct {
	dir       string
	retention time.Duration
	maxBytes  int64
	now       func() time.Time

	mu        sync.RWMutex // guards the fields below
	segs      []*segment   // oldest first; the last one is written
	traces    map[TraceID][]spanLoc
	services  map[string]map[string]int // service → operation → spans
	names     map[string]string         // interned service and operation names
	spans     int
	bytes     int64
	buf       []byte
	lastPrune time.Time
}

type segment struct {
	path string
	f    *os.File // read and, for the last segment, appended to
	size int64
	// writing marks the segment this store appends to; segments read at
	// open are not written again.
	writing bool
	// created is when the segment began, from its name.
	created time.Time
	// first and last bound its spans' starts, to skip it in a search.
	first, last int64
	refs        []spanRef
}

// spanRef is what the index keeps of a span: about 90 bytes.
type spanRef struct {
	off         int64
	n           int32
	err         bool
	trace       TraceID
	start, dur  int64
	service, op string
}

type spanLoc struct {
	seg *segment
	i   int32
}

// StoreConfig bounds a store; zero values take the defaults.
type StoreConfig struct {
	Dir       string
	Retention time.Duration
	MaxBytes  int64
	// Now is the clock (tests); default time.Now.
	Now func() time.Time
}

// OpenStore opens (creating) the trace folder, reads the index of every
// segment in it, and removes what is past retention or the size bound.
// A torn last line (a crash mid-write) is skipped; new spans always go to
// a new segment.
func OpenStore(cfg StoreConfig) (*Store, error) {
	if cfg.Retention <= 0 {
		cfg.Retention = DefaultRetention
	}
	if cfg.MaxBytes <= 0 {
		cfg.MaxBytes = DefaultMaxBytes
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("traces: %w", err)
	}
	s := &Store{dir: cfg.Dir, retention: cfg.Retention, maxBytes: cfg.MaxBytes, now: cfg.Now,
		traces: map[TraceID][]spanLoc{}, services: map[string]map[string]int{}, names: map[string]string{}}
	names, err := filepath.Glob(filepath.Join(cfg.Dir, "*.spans"))
	if err != nil {
		return nil, fmt.Errorf("traces: %w", err)
	}
	sort.Strings(names)
	for _, p := range names {
		if err := s.load(p); err != nil {
			s.Close()
			return nil, err
		}
	}
	s.mu.Lock()
	s.pruneLocked()
	s.mu.Unlock()
	return s, nil
}

// load indexes one segment file.
func (s *Store) load(path string) error {
	nanos, err := strconv.ParseInt(strings.TrimSuffix(filepath.Base(path), ".spans"), 10, 64)
	if err != nil {
		return nil // not ours
	}
	f, err := os.OpenFile(path, os.O_RDONLY, 0)
	if err != nil {
		return fmt.Errorf("traces: %w", err)
	}
	seg := &segment{path: path, f: f, created: time.Unix(0, nanos)}
	r := bufio.NewReaderSize(f, 64<<10)
	var off int64
	for {
		line, err := r.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			// A span longer than the buffer: read the rest of it.
			rest, err2 := r.ReadBytes('\n')
			line, err = append(slices.Clone(line), rest...), err2
		}
		if err != nil {
			break // EOF, or a torn last line
		}
		var sp Span
		if json.Unmarshal(line, &sp) == nil {
			s.index(seg, &sp, off, len(line))
		}
		off += int64(len(line))
	}
	seg.size = off
	s.segs = append(s.segs, seg)
	s.bytes += off
	return nil
}

// index adds a span written at off to the index; s.mu is held (or the
// store is not shared yet).
func (s *Store) index(seg *segment, sp *Span, off int64, n int) {
	ref := spanRef{off: off, n: int32(n), err: sp.Failed(), trace: sp.TraceID, start: sp.Start,
		dur: sp.End - sp.Start, service: s.intern(sp.Service), op: s.intern(sp.Name)}
	if len(seg.refs) == 0 || ref.start < seg.first {
		seg.first = ref.start
	}
	if ref.start > seg.last {
		seg.last = ref.start
	}
	seg.refs = append(seg.refs, ref)
	s.traces[ref.trace] = append(s.traces[ref.trace], spanLoc{seg: seg, i: int32(len(seg.refs) - 1)})
	ops := s.services[ref.service]
	if ops == nil {
		ops = map[string]int{}
		s.services[ref.service] = ops
	}
	ops[ref.op]++
	s.spans++
}

func (s *Store) intern(v string) string {
	if w, ok := s.names[v]; ok {
		return w
	}
	s.names[v] = v
	return v
}

// Add writes spans at the end of the current segment, in one write, and
// indexes them.
func (s *Store) Add(spans []Span) error {
	if len(spans) == 0 {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	seg, err := s.writable(now)
	if err != nil {
		return err
	}
	s.buf = s.buf[:0]
	offs := make([]int, 0, len(spans)+1)
	for i := range spans {
		offs = append(offs, len(s.buf))
		s.buf = append(appendSpanJSON(s.buf, &spans[i]), '\n')
	}
	offs = append(offs, len(s.buf))
	if _, err := seg.f.Write(s.buf); err != nil {
		// What was written in part is a torn line the next open skips;
		// the file is not written again.
		seg.writing = false
		return fmt.Errorf("traces: %w", err)
	}
	for i := range spans {
		s.index(seg, &spans[i], seg.size+int64(offs[i]), offs[i+1]-offs[i])
	}
	seg.size += int64(len(s.buf))
	s.bytes += int64(len(s.buf))
	if now.Sub(s.lastPrune) > time.Minute || s.bytes > s.maxBytes {
		s.pruneLocked()
	}
	return nil
}

// writable returns the segment to append to, starting a new one when there
// is none, the last one is old or full, or it was read at open.
func (s *Store) writable(now time.Time) (*segment, error) {
	if n := len(s.segs); n > 0 {
		seg := s.segs[n-1]
		if seg.writing && now.Sub(seg.created) < segmentAge && seg.size < s.maxBytes/maxSegments {
			return seg, nil
		}
	}
	created := now
	if n := len(s.segs); n > 0 && !created.After(s.segs[n-1].created) {
		created = s.segs[n-1].created.Add(1) // names stay in order
	}
	path := filepath.Join(s.dir, fmt.Sprintf("%019d.spans", created.UnixNano()))
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR|os.O_APPEND|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("traces: %w", err)
	}
	seg := &segment{path: path, f: f, created: created, writing: true}
	s.segs = append(s.segs, seg)
	return seg, nil
}

// pruneLocked removes the segments whose newest span is past retention,
// then the oldest until the folder fits its bound; the segment being
// written goes only by age. s.mu is held.
func (s *Store) pruneLocked() {
	now := s.now()
	s.lastPrune = now
	cut := now.Add(-s.retention).UnixNano()
	for len(s.segs) > 0 {
		seg := s.segs[0]
		old := len(seg.refs) == 0 && !seg.writing && seg.created.UnixNano() < cut || len(seg.refs) > 0 && seg.last < cut
		full := s.bytes > s.maxBytes && len(s.segs) > 1
		if !old && !full {
			return
		}
		s.drop(seg)
	}
}

// drop removes the oldest segment from the index and the disk.
func (s *Store) drop(seg *segment) {
	s.segs = s.segs[1:]
	for i := range seg.refs {
		ref := &seg.refs[i]
		locs := s.traces[ref.trace]
		locs = slices.DeleteFunc(locs, func(l spanLoc) bool { return l.seg == seg })
		if len(locs) == 0 {
			delete(s.traces, ref.trace)
		} else {
			s.traces[ref.trace] = locs
		}
		if ops := s.services[ref.service]; ops != nil {
			if ops[ref.op]--; ops[ref.op] <= 0 {
				delete(ops, ref.op)
			}
			if len(ops) == 0 {
				delete(s.services, ref.service)
			}
		}
	}
	s.spans -= len(seg.refs)
	s.bytes -= seg.size
	_ = seg.f.Close()
	_ = os.Remove(seg.path)
}

// Close closes the segment files.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var errs []error
	for _, seg := range s.segs {
		if seg.f != nil {
			errs = append(errs, seg.f.Close())
			seg.f = nil
		}
		seg.writing = false
	}
	return errors.Join(errs...)
}

// Stats are what the store holds.
type Stats struct {
	Spans  int
	Traces int
	Bytes  int64
}

// Stats counts spans, traces and bytes on disk.
func (s *Store) Stats() Stats {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return Stats{Spans: s.spans, Traces: len(s.traces), Bytes: s.bytes}
}

// Services lists the services that made spans, sorted.
func (s *Store) Services() []string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]string, 0, len(s.services))
	for name := range s.services {
		out = append(out, name)
	}
	sort.Strings(out)
	return out
}

// Operations lists a service's span names, sorted.
func (s *Store) Operations(service string) []string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]string, 0, len(s.services[service]))
	for name := range s.services[service] {
		out = append(out, name)
	}
	sort.Strings(out)
	return out
}

// Trace returns the spans of a trace, by start time; none when the store
// does not have it.
func (s *Store) Trace(id TraceID) ([]Span, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	locs := s.traces[id]
	out := make([]Span, 0, len(locs))
	for _, l := range locs {
		sp, err := s.read(l.seg, &l.seg.refs[l.i])
		if err != nil {
			return nil, err
		}
		out = append(out, sp)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Start < out[j].Start })
	return out, nil
}

// read reads one span from its segment; s.mu is held.
func (s *Store) read(seg *segment, ref *spanRef) (Span, error) {
	var sp Span
	if seg.f == nil {
		return sp, fmt.Errorf("traces: %s is closed", seg.path)
	}
	b := make([]byte, ref.n)
	if _, err := seg.f.ReadAt(b, ref.off); err != nil && !errors.Is(err, io.EOF) {
		return sp, fmt.Errorf("traces: %w", err)
	}
	if err := json.Unmarshal(b, &sp); err != nil {
		return sp, fmt.Errorf("traces: %s at %d: %w", seg.path, ref.off, err)
	}
	return sp, nil
}
