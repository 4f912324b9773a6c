// Package logs keeps the output of every process nubo runs: a bounded ring of
// recent lines per service, queried by `nubo logs` (with --since, --tail and
// -f) through the admin API. Parsing, filtering and on-disk retention
// (observability.logs) build on it.
package logs

import (
	"cmp"
	"slices"
	"sync"
	"time"

	"github.com/nubo-dev/nubo/internal/apitype"
)

// Line is apitype.LogLine: the wire type lives there, so that the API
// changes only where it is declared.
type Line = apitype.LogLine

// DefaultPerService is how many lines each service keeps by default.
const DefaultPerService = 10000

// Store keeps the last lines of each service. It is safe for concurrent use.
type Store struct {
	perService int

	mu      sync.Mutex // guards everything below
	seq     uint64
	rings   map[string]*ring
	waiters map[chan struct{}]struct{}
}

type ring struct {
	lines []Line
	next  int // where the next line goes once full
	full  bool
}

// New returns a store keeping perService lines per service (DefaultPerService
// when <= 0).
func New(perService int) *Store {
	if perService <= 0 {
		perService = DefaultPerService
	}
	return &Store{perService: perService, rings: map[string]*ring{}, waiters: map[chan struct{}]struct{}{}}
}

// Add stores a line, giving it a sequence number (and a time when it has none),
// and wakes followers.
func (s *Store) Add(l Line) {
	if l.Time.IsZero() {
		l.Time = time.Now()
	}
	s.mu.Lock()
	s.seq++
	l.Seq = s.seq
	r := s.rings[l.Service]
	if r == nil {
		r = &ring{lines: make([]Line, 0, min(s.perService, 256))}
		s.rings[l.Service] = r
	}
	if !r.full && len(r.lines) < s.perService {
		r.lines = append(r.lines, l)
		if len(r.lines) == s.perService {
			r.full = true
		}
	} else {
		r.lines[r.next] = l
		r.next = (r.next + 1) % s.perService
	}
	for w := range s.waiters {
		close(w)
		delete(s.waiters, w)
	}
	s.mu.Unlock()
}

// Query selects lines.
type Query struct {
	Service  string    // "" for every service
	Since    time.Time // zero: no bound
	AfterSeq uint64    // only lines after this sequence number
	Tail     int       // the last N lines only; 0: all
}

// Get returns the matching lines in order.
func (s *Store) Get(q Query) []Line {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Line
	for name, r := range s.rings {
		if q.Service != "" && name != q.Service {
			continue
		}
		for _, l := range r.ordered() {
			if l.Seq > q.AfterSeq && (q.Since.IsZero() || !l.Time.Before(q.Since)) {
				out = append(out, l)
			}
		}
	}
	slices.SortFunc(out, func(a, b Line) int { return cmp.Compare(a.Seq, b.Seq) })
	if q.Tail > 0 && len(out) > q.Tail {
		out = out[len(out)-q.Tail:]
	}
	return out
}

// Wait returns a channel closed at the next Add, for followers.
func (s *Store) Wait() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	w := make(chan struct{})
	s.waiters[w] = struct{}{}
	return w
}

func (r *ring) ordered() []Line {
	if !r.full {
		return r.lines
	}
	out := make([]Line, 0, len(r.lines))
	out = append(out, r.lines[r.next:]...)
	return append(out, r.lines[:r.next]...)
}
