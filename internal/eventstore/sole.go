package eventstore

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/nubo-dev/nubo/internal/apitype"
)

// A sole writer (Config.SoleWriter) is the only client that publishes on
// the store's subjects: nubo up's embedded broker refuses them to every
// other connection (see ReservedSubjects). It then needs neither of
// JetStream's checks, which are what an append costs the server beyond a
// plain publish (bench/README.md):
//
//   - the version: appends to one stream take turns (streamLocks), and
//     the head cached after the last one is the stream's head, since no
//     one else writes;
//   - the ids: the ids clients chose are remembered for dupWindow, or the
//     retention when shorter (idWindow), as JetStream's message-id window
//     would; an id the store made itself cannot come again.
//
// What the store does not know it reads: a stream's head on its first
// append (and after a publish whose outcome is unknown), and then the ids
// chosen for it within the window, so that a retry after a restart of
// nubo, or across a reload of the eventStore section, is still recognised.
// Only heads the writer made or loaded so are trusted: readers do not
// fill the cache. The first append after a load still carries JetStream's
// expected last subject sequence, for an append of the writer's own that
// the server had queued but not stored when the head was read.

// appendSole is an append of a sole writer.
func (s *Store) appendSole(ctx context.Context, stream string, exp expectation, expected apitype.ExpectedVersion, evs []outgoing) (apitype.AppendResponse, error) {
	l := s.writers.lock(stream)
	defer s.writers.unlock(stream, l)
	for attempt := 0; attempt < maxAppendAttempts; attempt++ {
		h, cached := s.heads.get(stream)
		if r := s.es.Retention.Duration; cached && r > 0 && h.seq > 0 && time.Since(h.at) >= r {
			// The head may have expired: read what is left, as JetStream's
			// check would (a stream whose events all expired starts again).
			cached = false
		}
		if !cached {
			var err error
			if h, err = s.loadStream(ctx, stream); err != nil {
				return apitype.AppendResponse{}, err
			}
		}
		// In JetStream's order: the version first, then the ids. A retry
		// that expects a version the stream has moved past is recognised
		// by what follows that version (storedAfter).
		if !exp.holds(h) {
			if res, ok, err := s.storedAfter(ctx, stream, exp, evs); err != nil || ok {
				return res, err
			}
			return apitype.AppendResponse{}, &WrongVersionError{Stream: stream, Expected: expected, Current: h.version}
		}
		if res, found, err := s.ids.answer(stream, evs); found || err != nil {
			return res, err
		}
		msgs, err := s.encodeAll(ctx, stream, h, evs)
		if err != nil {
			return apitype.AppendResponse{}, err
		}
		if !cached {
			// A head this writer read rather than made may miss an append
			// of its own still queued in the server (one whose caller gave
			// up waiting): JetStream checks it, once.
			msgs[0].Header = nats.Header{hdrExpLastSubjSeq: {strconv.FormatUint(h.seq, 10)}}
		}
		ack, err := publishBatch(ctx, s.nc, msgs)
		switch {
		case err == nil:
			res := s.appendedAt(stream, h, ack.Seq, len(evs))
			now := time.Now()
			for i, ev := range evs {
				if ev.idGiven {
					s.ids.add(stream, ev.ID, res.FirstPosition+uint64(i), res.FirstVersion+int64(i), now)
				}
			}
			return res, nil
		case apiCode(err) == errCodeWrongLastSeq:
			s.heads.drop(stream) // that append landed: read again, ids included
		default:
			// Stored or not, nobody knows (a timeout, a cancelled
			// request): the next append reads the stream again.
			s.heads.drop(stream)
			return apitype.AppendResponse{}, fmt.Errorf("stream %q: append: %w", stream, err)
		}
	}
	return apitype.AppendResponse{}, fmt.Errorf("stream %q: append: the stream moved %d times in a row under this append", stream, maxAppendAttempts)
}

// loadStream reads a stream's head and the ids chosen for it within the
// window, for a sole writer without a head of the stream it can trust, and
// caches the head.
func (s *Store) loadStream(ctx context.Context, stream string) (head, error) {
	h, err := s.readHead(ctx, stream)
	if err != nil {
		return head{}, err
	}
	if h.version < 0 || time.Since(h.at) > s.ids.window {
		s.heads.set(stream, h)
		return h, nil
	}
	since := time.Now().Add(-s.ids.window)
	req := directGet{StartTime: &since, NextFor: s.n.subject(stream), Batch: maxRead, UpToSeq: h.seq}
	for {
		msgs, err := getBatch(ctx, s.nc, s.n.stream(), req)
		if err != nil {
			return head{}, fmt.Errorf("stream %q: read the ids of the last %v: %w", stream, s.ids.window, err)
		}
		for _, m := range msgs {
			st, err := s.readStored(m.subject, m.seq, m.header, m.data)
			if err != nil {
				return head{}, err
			}
			if st.idGiven {
				s.ids.add(stream, st.id, m.seq, st.version, m.time)
			}
		}
		if len(msgs) == 0 || msgs[len(msgs)-1].seq >= h.seq {
			s.heads.set(stream, h)
			return h, nil
		}
		req = directGet{Seq: msgs[len(msgs)-1].seq + 1, NextFor: s.n.subject(stream), Batch: maxRead, UpToSeq: h.seq}
	}
}

// streamLocks gives each stream a lock while appends to it are under way;
// an idle stream has none.
type streamLocks struct {
	mu sync.Mutex // guards m and the refs
	m  map[string]*streamLock
}

type streamLock struct {
	sync.Mutex
	refs int // appends holding or waiting for it
}

func (l *streamLocks) lock(stream string) *streamLock {
	l.mu.Lock()
	sl := l.m[stream]
	if sl == nil {
		if l.m == nil {
			l.m = map[string]*streamLock{}
		}
		sl = &streamLock{}
		l.m[stream] = sl
	}
	sl.refs++
	l.mu.Unlock()
	sl.Lock()
	return sl
}

func (l *streamLocks) unlock(stream string, sl *streamLock) {
	sl.Unlock()
	l.mu.Lock()
	if sl.refs--; sl.refs == 0 {
		delete(l.m, stream)
	}
	l.mu.Unlock()
}

// maxIDs bounds the ids one generation of an idWindow holds; past it the
// generation turns early, so that at more than maxIDs chosen ids per
// window the oldest are forgotten before dupWindow (JetStream's own
// window has no such bound, and holds every id in memory).
const maxIDs = 1 << 20

// idWindow remembers the event ids clients chose, with where they were
// stored, for at least its window: in two generations, the current one and
// the one before, turned every window, so that forgetting costs nothing
// per append.
type idWindow struct {
	// window is dupWindow, or the retention when shorter: JetStream's
	// rule for its own window, and an id whose event expired is free.
	window time.Duration

	mu         sync.Mutex // guards the fields below
	cur, prev  map[string]storedID
	curStarted time.Time
}

type storedID struct {
	seq     uint64
	version int64
	at      time.Time
}

func idKey(stream, id string) string { return stream + "/" + id }

func (w *idWindow) add(stream, id string, seq uint64, version int64, at time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.turn(time.Now())
	w.cur[idKey(stream, id)] = storedID{seq: seq, version: version, at: at}
}

// turn starts a new generation when the current one is a window old or
// full. Called with mu held.
func (w *idWindow) turn(now time.Time) {
	if w.cur != nil && now.Sub(w.curStarted) < w.window && len(w.cur) < maxIDs {
		return
	}
	w.prev, w.cur, w.curStarted = w.cur, map[string]storedID{}, now
}

func (w *idWindow) get(stream, id string, now time.Time) (storedID, bool) {
	k := idKey(stream, id)
	e, ok := w.cur[k]
	if !ok {
		e, ok = w.prev[k]
	}
	return e, ok && now.Sub(e.at) <= w.window
}

// answer looks the chosen ids of evs up. None known: found is false and
// the append goes on. All known, as consecutive versions in the order
// given: it was appended before, and res says where. Some known, or not
// as this append: IDConflictError.
func (w *idWindow) answer(stream string, evs []outgoing) (res apitype.AppendResponse, found bool, err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.cur) == 0 && len(w.prev) == 0 {
		return res, false, nil
	}
	now := time.Now()
	var first, last storedID
	known := 0
	for i, ev := range evs {
		if !ev.idGiven {
			continue
		}
		e, ok := w.get(stream, ev.ID, now)
		if !ok {
			continue
		}
		if known == 0 {
			first = e
		}
		if known != i || e.version != first.version+int64(i) {
			return res, true, &IDConflictError{Stream: stream}
		}
		last = e
		known++
	}
	switch known {
	case 0:
		return res, false, nil
	case len(evs):
		return apitype.AppendResponse{
			Stream: stream, FirstVersion: first.version, LastVersion: last.version,
			FirstPosition: first.seq, LastPosition: last.seq, Duplicate: true,
		}, true, nil
	}
	return res, true, &IDConflictError{Stream: stream}
}
