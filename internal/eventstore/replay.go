package eventstore

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/nubo-dev/nubo/internal/apitype"
	"github.com/nubo-dev/nubo/internal/spec"
)

// ReplayRequest and ReplayProgress are the wire types of POST
// /v1/eventstore/replay.
type (
	ReplayRequest  = apitype.ReplayRequest
	ReplayProgress = apitype.ReplayProgress
)

// replayAttempts is how often a batch is tried before replay counts it
// failed and moves on.
const replayAttempts = 3

// checkReplay validates req, fills its defaults and returns its target.
func checkReplay(req *ReplayRequest) (spec.Target, error) {
	target, err := spec.ParseTarget(req.Target)
	if err != nil || (target.Kind != spec.TargetFunction && target.Kind != spec.TargetService) {
		return target, fmt.Errorf("%w: replay: target %q: want function:NAME or service:NAME/path", ErrInvalid, req.Target)
	}
	if req.Batch == 0 {
		req.Batch = 100
	}
	if req.Batch < 0 || req.Batch > maxRead {
		return target, fmt.Errorf("%w: replay: batch %d: want 1 to %d", ErrInvalid, req.Batch, maxRead)
	}
	if !req.To.IsZero() && !req.From.IsZero() && !req.To.After(req.From) {
		return target, fmt.Errorf("%w: replay: to %s is not after from %s", ErrInvalid, req.To.Format(time.RFC3339), req.From.Format(time.RFC3339))
	}
	return target, nil
}

// Replay delivers the window's matching events to the target in batches,
// calling progress after each batch. A batch that fails replayAttempts
// times is counted failed and skipped: replay reports, it does not stop.
func (s *Store) Replay(ctx context.Context, req ReplayRequest, progress func(ReplayProgress)) (ReplayProgress, error) {
	var p ReplayProgress
	target, err := checkReplay(&req)
	if err != nil {
		return p, err
	}
	if s.cfg.Handlers == nil {
		return p, fmt.Errorf("replay: no way to reach %s", target)
	}
	f := newFilter(req.Streams, req.Types)
	get := directGet{NextFor: f.subject(s.n), Batch: maxRead}
	if req.From.IsZero() {
		get.Seq = 1
	} else {
		from := req.From.UTC()
		get.StartTime = &from
	}
	if st, err := s.state(ctx); err == nil {
		p.Total = st.Msgs
	}
	var batch []apitype.RecordedEvent
	flush := func() {
		if len(batch) == 0 {
			return
		}
		var err error
		for attempt := range replayAttempts {
			if err = s.deliver(ctx, target, batch); err == nil || ctx.Err() != nil {
				break
			}
			select {
			case <-ctx.Done():
			case <-time.After(retryMin << attempt):
			}
		}
		p.Batches++
		if err != nil {
			p.Failed++
			p.LastError = err.Error()
		} else {
			p.Events += len(batch)
		}
		batch = batch[:0]
		progress(p)
	}
	for ctx.Err() == nil {
		msgs, err := getBatch(ctx, s.nc, s.n.stream(), get)
		if err != nil {
			return p, fmt.Errorf("replay: read from %d: %w", get.Seq, err)
		}
		for _, m := range msgs {
			p.Position = m.seq
			if !req.To.IsZero() && !m.time.Before(req.To) {
				flush()
				p.Done = true
				return p, ctx.Err()
			}
			ev, ok, err := s.decodeMatching(m, f)
			if err != nil {
				return p, err
			}
			if !ok {
				continue
			}
			batch = append(batch, ev)
			if len(batch) == req.Batch {
				flush()
			}
		}
		if len(msgs) == 0 || msgs[len(msgs)-1].header.Get("Nats-Num-Pending") == "0" {
			break
		}
		get = directGet{Seq: p.Position + 1, NextFor: get.NextFor, Batch: maxRead}
	}
	flush()
	p.Done = true
	return p, ctx.Err()
}

// apiReplay runs a replay and streams its progress as NDJSON, one
// ReplayProgress a line, the last with done set.
func (s *Store) apiReplay(w http.ResponseWriter, r *http.Request) {
	var req ReplayRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		writeError(w, http.StatusBadRequest, "replay: body: "+err.Error())
		return
	}
	// Checked before the answer starts, so that a bad request is a 400.
	if _, err := checkReplay(&req); err != nil {
		writeStoreError(w, err)
		return
	}
	flusher, _ := w.(http.Flusher)
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.WriteHeader(http.StatusOK)
	enc := json.NewEncoder(w)
	sum, err := s.Replay(r.Context(), req, func(p ReplayProgress) {
		_ = enc.Encode(p)
		if flusher != nil {
			flusher.Flush()
		}
	})
	if err != nil && sum.LastError == "" {
		sum.LastError = err.Error()
	}
	_ = enc.Encode(sum)
}
