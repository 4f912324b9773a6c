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
	"unicode/utf8"

	"github.com/nubo-dev/nubo/internal/apitype"
)

// Line is apitype.LogLine: the wire type lives there, so that the API
// changes only where it is declared.
type Line = apitype.LogLine

// Bounds of the store. Lines count, and so do their bytes: one process
// that prints without newlines must not take the machine's memory.
const (
	// DefaultPerService is how many lines each service keeps by default.
	DefaultPerService = 10000
	// ServiceBytes bounds the text each service keeps.
	ServiceBytes = 16 << 20
	// TotalBytes bounds the text of all services together; past it the
	// service that keeps the most gives up its oldest lines first.
	TotalBytes = 128 << 20
	// MaxLineBytes splits longer lines; each piece after the first starts
	// with ContinuationMark.
	MaxLineBytes = 16 << 10
	// ContinuationMark starts the pieces of a split line but the first.
	ContinuationMark = "… "
)

// lineOverhead is what a line costs beside its text (fields, slice slot),
// so that many empty lines count too.
const lineOverhead = 96

// Store keeps the last lines of each service. It is safe for concurrent use.
type Store struct {
	perService int

	mu      sync.Mutex // guards everything below
	seq     uint64
	rings   map[string]*ring
	bytes   int // of every ring
	waiters map[chan struct{}]struct{}
}

// ring is one service's lines, oldest first, from head.
type ring struct {
	lines []Line
	head  int
	bytes int
}

func (r *ring) len() int { return len(r.lines) - r.head }

func (r *ring) push(l Line) int {
	r.lines = append(r.lines, l)
	n := len(l.Text) + lineOverhead
	r.bytes += n
	return n
}

// pop drops the oldest line and returns its size.
func (r *ring) pop() int {
	n := len(r.lines[r.head].Text) + lineOverhead
	r.lines[r.head] = Line{}
	r.head++
	r.bytes -= n
	// Compact once the dropped half is worth the copy.
	if r.head > 1024 && r.head > len(r.lines)/2 {
		r.lines = append(r.lines[:0:0], r.lines[r.head:]...)
		r.head = 0
	}
	return n
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
// and wakes followers. A line longer than MaxLineBytes is stored in pieces.
func (s *Store) Add(l Line) {
	if l.Time.IsZero() {
		l.Time = time.Now()
	}
	s.mu.Lock()
	r := s.rings[l.Service]
	if r == nil {
		r = &ring{lines: make([]Line, 0, min(s.perService, 256))}
		s.rings[l.Service] = r
	}
	text := l.Text
	for first := true; first || text != ""; first = false {
		piece := l
		piece.Text, text = cut(text, MaxLineBytes)
		if !first {
			piece.Text = ContinuationMark + piece.Text
		}
		s.seq++
		piece.Seq = s.seq
		s.bytes += r.push(piece)
		for r.len() > s.perService || r.bytes > ServiceBytes {
			s.bytes -= r.pop()
		}
	}
	for s.bytes > TotalBytes {
		s.bytes -= s.largest().pop()
	}
	for w := range s.waiters {
		close(w)
		delete(s.waiters, w)
	}
	s.mu.Unlock()
}

// cut splits text after at most n bytes, at a rune boundary.
func cut(text string, n int) (head, rest string) {
	if len(text) <= n {
		return text, ""
	}
	i := n
	for i > 0 && !utf8.RuneStart(text[i]) {
		i--
	}
	if i == 0 {
		i = n
	}
	return text[:i], text[i:]
}

// largest is the ring that keeps the most bytes.
func (s *Store) largest() *ring {
	var big *ring
	for _, r := range s.rings {
		if big == nil || r.bytes > big.bytes {
			big = r
		}
	}
	return big
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

func (r *ring) ordered() []Line { return r.lines[r.head:] }
