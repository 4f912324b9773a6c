package tracing

import (
	"strconv"
	"time"
)

// Query finds traces: a trace matches when one of its spans matches every
// condition given, as Jaeger's search does.
type Query struct {
	Service, Operation string
	// Tags are attribute conditions; the key "error" matches the span's
	// status ("true": failed).
	Tags                     map[string]string
	MinDuration, MaxDuration time.Duration
	// Start and End bound the span's start; zero is unbounded.
	Start, End time.Time
	// Error keeps only spans that failed.
	Error bool
	// Limit is how many traces; default DefaultLimit, at most MaxLimit.
	Limit int
}

// Search limits.
const (
	DefaultLimit = 20
	MaxLimit     = 1500
)

// Search returns the IDs of the newest traces that match q, newest first.
func (s *Store) Search(q Query) ([]TraceID, error) {
	limit := q.Limit
	if limit <= 0 {
		limit = DefaultLimit
	}
	limit = min(limit, MaxLimit)
	var from, to int64 = 0, 1<<63 - 1
	if !q.Start.IsZero() {
		from = q.Start.UnixNano()
	}
	if !q.End.IsZero() {
		to = q.End.UnixNano()
	}
	wantErr := q.Error
	tags := q.Tags
	if v, ok := tags["error"]; ok {
		b, _ := strconv.ParseBool(v)
		wantErr = wantErr || b
		tags = make(map[string]string, len(q.Tags))
		for k, v := range q.Tags {
			if k != "error" {
				tags[k] = v
			}
		}
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	seen := map[TraceID]bool{}
	var out []TraceID
	for si := len(s.segs) - 1; si >= 0 && len(out) < limit; si-- {
		seg := s.segs[si]
		if len(seg.refs) == 0 || seg.last < from || seg.first > to {
			continue
		}
		for i := len(seg.refs) - 1; i >= 0 && len(out) < limit; i-- {
			ref := &seg.refs[i]
			if seen[ref.trace] || ref.start < from || ref.start > to ||
				q.Service != "" && ref.service != q.Service || q.Operation != "" && ref.op != q.Operation ||
				wantErr && !ref.err ||
				q.MinDuration > 0 && ref.dur < int64(q.MinDuration) || q.MaxDuration > 0 && ref.dur > int64(q.MaxDuration) {
				continue
			}
			if len(tags) > 0 {
				sp, err := s.read(seg, ref)
				if err != nil {
					return nil, err
				}
				if !hasTags(&sp, tags) {
					continue
				}
			}
			seen[ref.trace] = true
			out = append(out, ref.trace)
		}
	}
	return out, nil
}

func hasTags(sp *Span, tags map[string]string) bool {
	for k, v := range tags {
		got, ok := sp.Attr(k)
		if k == "span.kind" {
			got, ok = sp.Kind.String(), true
		}
		if !ok || got != v {
			return false
		}
	}
	return true
}
