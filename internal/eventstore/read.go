package eventstore

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/nubo-dev/nubo/internal/apitype"
)

// maxRead bounds the events of one read.
const maxRead = 1000

// ReadStream reads up to limit events of stream: forward from version
// from, or backward from it (from < 0: from the last event). It returns
// the events and the version the next page starts at (-1: none).
func (s *Store) ReadStream(ctx context.Context, stream string, from int64, backward bool, limit int) ([]apitype.RecordedEvent, int64, error) {
	start := time.Now()
	defer s.metrics.observeRead(start)
	if err := checkStreamName(stream); err != nil {
		return nil, -1, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	if limit <= 0 || limit > maxRead {
		limit = maxRead
	}
	h, err := s.readHead(ctx, stream)
	if err != nil || h.version < 0 {
		return nil, -1, err
	}
	lo, hi := from, h.version
	if backward {
		if from >= 0 && from < hi {
			hi = from
		}
		lo = max(0, hi-int64(limit)+1)
	} else if lo < 0 {
		lo = 0
	}
	if lo > hi {
		return nil, -1, nil
	}
	seq, err := s.seqOfVersion(ctx, stream, lo, h)
	if err != nil {
		return nil, -1, err
	}
	want := min(int(hi-lo+1), limit)
	// A batch may come back short (the server bounds its bytes): read on
	// until want or the end, so that a backward page is the newest one.
	var msgs []rawMsg
	for len(msgs) < want {
		page, err := getBatch(ctx, s.nc, s.n.stream(), directGet{Seq: seq, NextFor: s.n.subject(stream), Batch: want - len(msgs)})
		if err != nil {
			return nil, -1, fmt.Errorf("stream %q: read: %w", stream, err)
		}
		msgs = append(msgs, page...)
		if len(page) == 0 || page[len(page)-1].header.Get("Nats-Num-Pending") == "0" {
			break
		}
		seq = page[len(page)-1].seq + 1
	}
	evs := make([]apitype.RecordedEvent, 0, len(msgs))
	for _, m := range msgs {
		ev, err := s.decodeRaw(m)
		if err != nil {
			return nil, -1, err
		}
		if ev.Version < lo || ev.Version > hi {
			continue
		}
		evs = append(evs, ev)
	}
	next := int64(-1)
	if backward {
		slices.Reverse(evs)
		if n := len(evs); n > 0 && evs[n-1].Version > 0 {
			next = evs[n-1].Version - 1
		}
	} else if n := len(evs); n > 0 && evs[n-1].Version < h.version {
		next = evs[n-1].Version + 1
	}
	return evs, next, nil
}

// seqOfVersion finds the sequence of the first event of stream at version
// v or later, by binary search over sequences: versions grow with
// sequences within a stream, and retention may have dropped the oldest.
// Each probe is one direct get.
func (s *Store) seqOfVersion(ctx context.Context, stream string, v int64, h head) (uint64, error) {
	if v <= 0 {
		return 1, nil
	}
	subject := s.n.subject(stream)
	lo, hi := uint64(1), h.seq
	for lo < hi {
		mid := lo + (hi-lo)/2
		msgs, err := getBatch(ctx, s.nc, s.n.stream(), directGet{Seq: mid, NextFor: subject, Batch: 1})
		if err != nil {
			return 0, fmt.Errorf("stream %q: find version %d: %w", stream, v, err)
		}
		if len(msgs) == 0 {
			return hi, nil
		}
		st, err := s.readStored(msgs[0].subject, msgs[0].seq, msgs[0].header, msgs[0].data)
		if err != nil {
			return 0, fmt.Errorf("stream %q: find version %d: %w", stream, v, err)
		}
		if st.version >= v {
			hi = mid
		} else {
			lo = msgs[0].seq + 1
		}
	}
	return lo, nil
}

// ReadAll reads up to limit events of all streams from global position
// from (1 is the first), those of streams matching the pattern streams
// ('*' any run of characters; empty: all) and of the given types (none:
// all). It returns the events and the position the next page starts at
// (0: the end of the store was reached).
func (s *Store) ReadAll(ctx context.Context, from uint64, streams string, types []string, limit int) ([]apitype.RecordedEvent, uint64, error) {
	start := time.Now()
	defer s.metrics.observeRead(start)
	if limit <= 0 || limit > maxRead {
		limit = maxRead
	}
	from = max(from, 1)
	f := newFilter(streams, types)
	var evs []apitype.RecordedEvent
	for {
		msgs, err := getBatch(ctx, s.nc, s.n.stream(), directGet{Seq: from, NextFor: f.subject(s.n), Batch: maxRead})
		if err != nil {
			return nil, 0, fmt.Errorf("read all from %d: %w", from, err)
		}
		for _, m := range msgs {
			from = m.seq + 1
			ev, ok, err := s.decodeMatching(m, f)
			if err != nil {
				return nil, 0, err
			}
			if !ok {
				continue
			}
			evs = append(evs, ev)
			if len(evs) == limit {
				if m.header.Get("Nats-Num-Pending") == "0" {
					return evs, 0, nil
				}
				return evs, from, nil
			}
		}
		if len(msgs) == 0 || msgs[len(msgs)-1].header.Get("Nats-Num-Pending") == "0" {
			return evs, 0, nil
		}
	}
}

// Streams lists the streams with their heads (up to the server's limit of
// one batched get, 1024 streams) and counts the events stored.
func (s *Store) Streams(ctx context.Context) (apitype.StreamsResponse, error) {
	msgs, err := getBatch(ctx, s.nc, s.n.stream(), directGet{MultiFor: []string{s.n.allSubjects()}, Batch: 1024})
	if err != nil {
		return apitype.StreamsResponse{}, fmt.Errorf("list streams: %w", err)
	}
	out := apitype.StreamsResponse{Streams: make([]apitype.StreamInfo, 0, len(msgs))}
	for _, m := range msgs {
		st, err := s.readStored(m.subject, m.seq, m.header, m.data)
		if err != nil {
			return apitype.StreamsResponse{}, fmt.Errorf("list streams: %w", err)
		}
		out.Streams = append(out.Streams, apitype.StreamInfo{Name: s.n.streamName(m.subject), Version: st.version, Position: m.seq, Updated: m.time.UTC()})
	}
	slices.SortFunc(out.Streams, func(a, b apitype.StreamInfo) int {
		if a.Name < b.Name {
			return -1
		}
		if a.Name > b.Name {
			return 1
		}
		return 0
	})
	st, err := s.state(ctx)
	if err != nil {
		return out, err
	}
	out.Events, out.LastPosition = st.Msgs, st.LastSeq
	return out, nil
}

// streamState is what the events stream holds.
type streamState struct {
	Msgs    uint64
	LastSeq uint64
	Streams uint64
}

func (s *Store) state(ctx context.Context) (streamState, error) {
	str, err := s.js.Stream(ctx, s.n.stream())
	if err != nil {
		return streamState{}, fmt.Errorf("stream %s: %w", s.n.stream(), err)
	}
	st := str.CachedInfo().State
	return streamState{Msgs: st.Msgs, LastSeq: st.LastSeq, Streams: st.NumSubjects}, nil
}

// Status is the store's part of nubo status.
func (s *Store) Status(ctx context.Context) (apitype.EventStoreStatus, error) {
	// The console answers status while the engine starts and stops.
	if !s.running.Load() {
		return apitype.EventStoreStatus{}, errNotRunning
	}
	st, err := s.state(ctx)
	if err != nil {
		return apitype.EventStoreStatus{}, err
	}
	return apitype.EventStoreStatus{
		Streams: int(st.Streams), Events: st.Msgs, LastPosition: st.LastSeq,
		Projections: s.Projections(ctx),
	}, nil
}
