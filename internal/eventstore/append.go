package eventstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"

	"github.com/nubo-dev/nubo/internal/apitype"
)

// ErrInvalid marks a request the store refuses as malformed (HTTP 400).
var ErrInvalid = errors.New("invalid request")

// WrongVersionError is an append whose expected version does not hold
// (HTTP 409).
type WrongVersionError struct {
	Stream   string
	Expected apitype.ExpectedVersion
	// Current is the stream's version; -1 when it has no event.
	Current int64
}

func (e *WrongVersionError) Error() string {
	return fmt.Sprintf("stream %q: expected version %s, but the stream is at version %d", e.Stream, e.Expected, e.Current)
}

// IDConflictError is an append some of whose event ids are stored in the
// stream already, but not as exactly this append (HTTP 409).
type IDConflictError struct {
	Stream string
}

func (e *IDConflictError) Error() string {
	return fmt.Sprintf("stream %q: some of these event ids are stored already, not as this same append", e.Stream)
}

// maxAppendAttempts bounds the retries of an append whose stream moved
// under it. Each retry means another writer stored something, so the
// system as a whole progresses; the bound stops one unlucky writer.
const maxAppendAttempts = 50

// expectation is a parsed expected version.
type expectation struct {
	kind    apitype.ExpectedVersion // any, no_stream, exists, or "" for a number
	version int64
}

func parseExpected(v apitype.ExpectedVersion) (expectation, error) {
	switch v {
	case "", apitype.ExpectAny:
		return expectation{kind: apitype.ExpectAny}, nil
	case apitype.ExpectNoStream, apitype.ExpectExists:
		return expectation{kind: v}, nil
	}
	if n, ok := v.Version(); ok {
		return expectation{version: n}, nil
	}
	return expectation{}, fmt.Errorf("%w: expected version %q: want any, no_stream, exists or a version (0, 1, ...)", ErrInvalid, v)
}

// holds reports whether a stream at h satisfies e.
func (e expectation) holds(h head) bool {
	switch e.kind {
	case apitype.ExpectAny:
		return true
	case apitype.ExpectNoStream:
		return h.version < 0
	case apitype.ExpectExists:
		return h.version >= 0
	}
	return h.version == e.version
}

// Append stores evs at the end of stream, all or none, if the stream's
// version satisfies expected. Events without an id get one.
//
// A retried append is recognised, and answered with what the first one
// stored (Duplicate set), in two ways: with a version expected (a number
// or no_stream) by comparing the ids of the events that follow that
// version; with any or exists by the ids of the last 2 minutes (dupWindow).
//
// A sole writer (Config.SoleWriter) checks the version and the ids itself,
// holding the stream's lock across the publish; otherwise JetStream checks
// them (expected last subject sequence, message-id window), so that the
// replicas of `nubo serve eventstore` can share a stream.
func (s *Store) Append(ctx context.Context, stream string, expected apitype.ExpectedVersion, evs []apitype.EventData) (apitype.AppendResponse, error) {
	start := time.Now()
	res, err := s.appendChecked(ctx, stream, expected, evs)
	s.metrics.observeAppend(start, len(evs), res.Duplicate, err)
	return res, err
}

func (s *Store) appendChecked(ctx context.Context, stream string, expected apitype.ExpectedVersion, in []apitype.EventData) (apitype.AppendResponse, error) {
	if err := checkStreamName(stream); err != nil {
		return apitype.AppendResponse{}, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	exp, err := parseExpected(expected)
	if err != nil {
		return apitype.AppendResponse{}, err
	}
	evs, err := checkEvents(stream, in)
	if err != nil {
		return apitype.AppendResponse{}, err
	}
	// Stop waits for the appends under way: a sole writer's successor
	// must not start while this one still publishes.
	s.appending.RLock()
	defer s.appending.RUnlock()
	if !s.running.Load() {
		return apitype.AppendResponse{}, errNotRunning
	}
	if s.cfg.SoleWriter {
		return s.appendSole(ctx, stream, exp, expected, evs)
	}
	return s.appendShared(ctx, stream, exp, expected, evs)
}

// appendShared is an append that JetStream checks: the expected last
// subject sequence on the first message, each event's id as its message
// id. A stale cached head costs a retry.
func (s *Store) appendShared(ctx context.Context, stream string, exp expectation, expected apitype.ExpectedVersion, evs []outgoing) (apitype.AppendResponse, error) {
	for attempt := 0; attempt < maxAppendAttempts; attempt++ {
		h, cached := s.heads.get(stream)
		if !cached {
			var err error
			if h, err = s.readHead(ctx, stream); err != nil {
				return apitype.AppendResponse{}, err
			}
			s.heads.set(stream, h)
		}
		if !exp.holds(h) {
			if cached {
				s.heads.drop(stream) // check again against the stored head
				continue
			}
			if res, ok, err := s.storedAfter(ctx, stream, exp, evs); err != nil || ok {
				return res, err
			}
			return apitype.AppendResponse{}, &WrongVersionError{Stream: stream, Expected: expected, Current: h.version}
		}
		msgs, err := s.encodeAll(ctx, stream, h, evs)
		if err != nil {
			return apitype.AppendResponse{}, err
		}
		for i, m := range msgs {
			m.Header = nats.Header{hdrMsgID: {stream + "/" + evs[i].ID}}
		}
		msgs[0].Header[hdrExpLastSubjSeq] = []string{strconv.FormatUint(h.seq, 10)}
		ack, err := publishBatch(ctx, s.nc, msgs)
		switch code := apiCode(err); {
		case err == nil && ack.Duplicate:
			// One event, stored before within the window.
			return s.duplicateOf(ctx, stream, ack.Seq)
		case err == nil:
			return s.appendedAt(stream, h, ack.Seq, len(evs)), nil
		case code == errCodeWrongLastSeq:
			// Another writer appended since h: read the head again.
			s.heads.drop(stream)
		case code == errCodeBatchDuplicate:
			s.heads.drop(stream)
			return s.findAppended(ctx, stream, evs)
		default:
			return apitype.AppendResponse{}, fmt.Errorf("stream %q: append: %w", stream, err)
		}
	}
	return apitype.AppendResponse{}, fmt.Errorf("stream %q: append: the stream moved %d times in a row under this append", stream, maxAppendAttempts)
}

// encodeAll makes the messages of evs appended after h.
func (s *Store) encodeAll(ctx context.Context, stream string, h head, evs []outgoing) ([]*nats.Msg, error) {
	tp := traceparentFrom(ctx)
	msgs := make([]*nats.Msg, len(evs))
	for i, ev := range evs {
		m, err := s.encode(stream, h.version+1+int64(i), ev, tp)
		if err != nil {
			return nil, fmt.Errorf("stream %q: encode event %s: %w", stream, ev.ID, err)
		}
		msgs[i] = m
	}
	return msgs, nil
}

// appendedAt records the head after n events appended after h, the last
// at JetStream sequence seq, and answers the append.
func (s *Store) appendedAt(stream string, h head, seq uint64, n int) apitype.AppendResponse {
	last := head{seq: seq, version: h.version + int64(n), at: time.Now()}
	s.heads.set(stream, last)
	return apitype.AppendResponse{
		Stream: stream, FirstVersion: h.version + 1, LastVersion: last.version,
		FirstPosition: seq - uint64(n) + 1, LastPosition: seq,
	}
}

// checkEvents validates the events of an append and gives ids to those
// without.
func checkEvents(stream string, in []apitype.EventData) ([]outgoing, error) {
	if len(in) == 0 {
		return nil, fmt.Errorf("%w: stream %q: no events to append", ErrInvalid, stream)
	}
	if len(in) > maxAppend {
		return nil, fmt.Errorf("%w: stream %q: %d events in one append, at most %d", ErrInvalid, stream, len(in), maxAppend)
	}
	evs := make([]outgoing, len(in))
	var seen map[string]bool // only for batches: one event cannot repeat itself
	if len(in) > 1 {
		seen = make(map[string]bool, len(in))
	}
	for i, ev := range in {
		if ev.Type == "" {
			return nil, fmt.Errorf("%w: stream %q: event %d has no type", ErrInvalid, stream, i)
		}
		given := ev.ID != ""
		if !given {
			ev.ID = uuid.NewString()
		}
		if len(ev.ID) > 200 {
			return nil, fmt.Errorf("%w: stream %q: event %d: id longer than 200 characters", ErrInvalid, stream, i)
		}
		if seen != nil && seen[ev.ID] {
			return nil, fmt.Errorf("%w: stream %q: event id %q twice in one append", ErrInvalid, stream, ev.ID)
		}
		if seen != nil {
			seen[ev.ID] = true
		}
		if len(ev.Data) > 0 && !json.Valid(ev.Data) {
			return nil, fmt.Errorf("%w: stream %q: event %s: data is not JSON", ErrInvalid, stream, ev.ID)
		}
		if len(ev.Metadata) > 0 && !json.Valid(ev.Metadata) {
			return nil, fmt.Errorf("%w: stream %q: event %s: metadata is not JSON", ErrInvalid, stream, ev.ID)
		}
		evs[i] = outgoing{EventData: ev, idGiven: given}
	}
	return evs, nil
}

// readHead reads a stream's last event from the broker. It leaves the
// cache of heads to the writers.
func (s *Store) readHead(ctx context.Context, stream string) (head, error) {
	msgs, err := getBatch(ctx, s.nc, s.n.stream(), directGet{MultiFor: []string{s.n.subject(stream)}, Batch: 1})
	if err != nil {
		return head{}, fmt.Errorf("stream %q: read head: %w", stream, err)
	}
	if len(msgs) == 0 {
		return head{version: -1}, nil
	}
	m := msgs[0]
	st, err := s.readStored(m.subject, m.seq, m.header, m.data)
	if err != nil {
		return head{}, err
	}
	return head{seq: m.seq, version: st.version, at: m.time}, nil
}

// storedAfter reports whether evs are stored right after the version exp
// expected: the same ids, in the same order. Then the append was made
// before (a retry after a lost answer) and its result is returned.
func (s *Store) storedAfter(ctx context.Context, stream string, exp expectation, evs []outgoing) (apitype.AppendResponse, bool, error) {
	var from int64
	switch exp.kind {
	case apitype.ExpectNoStream:
		from = 0
	case "":
		from = exp.version + 1
	default:
		return apitype.AppendResponse{}, false, nil
	}
	got, _, err := s.ReadStream(ctx, stream, from, false, len(evs))
	if err != nil {
		return apitype.AppendResponse{}, false, err
	}
	if len(got) != len(evs) || got[0].Version != from {
		return apitype.AppendResponse{}, false, nil
	}
	for i := range evs {
		if got[i].ID != evs[i].ID {
			return apitype.AppendResponse{}, false, nil
		}
	}
	return appended(stream, got), true, nil
}

func appended(stream string, got []apitype.RecordedEvent) apitype.AppendResponse {
	first, last := got[0], got[len(got)-1]
	return apitype.AppendResponse{
		Stream: stream, FirstVersion: first.Version, LastVersion: last.Version,
		FirstPosition: first.Position, LastPosition: last.Position, Duplicate: true,
	}
}

// duplicateOf answers a one-event append JetStream found stored already.
func (s *Store) duplicateOf(ctx context.Context, stream string, seq uint64) (apitype.AppendResponse, error) {
	msgs, err := getBatch(ctx, s.nc, s.n.stream(), directGet{Seq: seq})
	if err != nil {
		return apitype.AppendResponse{}, fmt.Errorf("stream %q: read the stored duplicate at %d: %w", stream, seq, err)
	}
	if len(msgs) == 0 {
		return apitype.AppendResponse{}, fmt.Errorf("stream %q: the stored duplicate at %d is gone", stream, seq)
	}
	ev, err := s.decodeRaw(msgs[0])
	if err != nil {
		return apitype.AppendResponse{}, err
	}
	return appended(stream, []apitype.RecordedEvent{ev}), nil
}

// findWindow is how far back from a stream's head findAppended looks: an
// id JetStream still remembers was stored within its 2-minute window.
const findWindow = 10 * maxAppend

// findAppended answers an atomic batch JetStream refused because some of
// its ids are stored: if all of them are, contiguous and in order, it is a
// retried append; otherwise the ids conflict.
func (s *Store) findAppended(ctx context.Context, stream string, evs []outgoing) (apitype.AppendResponse, error) {
	got, _, err := s.ReadStream(ctx, stream, -1, true, findWindow)
	if err != nil {
		return apitype.AppendResponse{}, err
	}
	for i, ev := range got { // newest first
		if ev.ID != evs[len(evs)-1].ID || i+len(evs) > len(got) {
			continue
		}
		match := true
		run := make([]apitype.RecordedEvent, len(evs))
		for j := range evs {
			e := got[i+len(evs)-1-j]
			run[j] = e
			match = match && e.ID == evs[j].ID
		}
		if match {
			return appended(stream, run), nil
		}
	}
	return apitype.AppendResponse{}, &IDConflictError{Stream: stream}
}

func apiCode(err error) int {
	var ae *apiError
	if errors.As(err, &ae) {
		return ae.ErrCode
	}
	return 0
}
