package eventstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/nubo-dev/nubo/internal/apitype"
	"github.com/nubo-dev/nubo/internal/broker"
	"github.com/nubo-dev/nubo/internal/spec"
)

// newStore starts a store of app "shop" with es on b (a new embedded
// broker when nil), a sole writer as under nubo up.
func newStore(t *testing.T, b *broker.Broker, es *spec.EventStore, h Handlers, key string) *Store {
	t.Helper()
	return newStoreMode(t, b, es, h, key, true)
}

// modes runs f for a sole writer (nubo up) and for a store whose appends
// JetStream checks (nubo serve eventstore).
func modes(t *testing.T, f func(t *testing.T, sole bool)) {
	for _, sole := range []bool{true, false} {
		name := "shared"
		if sole {
			name = "sole"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			f(t, sole)
		})
	}
}

func newStoreMode(t *testing.T, b *broker.Broker, es *spec.EventStore, h Handlers, key string, sole bool) *Store {
	t.Helper()
	if b == nil {
		b = startBroker(t, t.TempDir())
	}
	if es == nil {
		es = &spec.EventStore{}
	}
	s, err := New(Config{App: &spec.App{Name: "shop", EventStore: es}, Broker: b, Handlers: h, Key: key, Logger: testLogger(), SoleWriter: sole})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Stop(context.Background()) })
	return s
}

func ev(id, typ string, data string) apitype.EventData {
	e := apitype.EventData{ID: id, Type: typ}
	if data != "" {
		e.Data = json.RawMessage(data)
	}
	return e
}

func mustAppend(t *testing.T, s *Store, stream string, exp apitype.ExpectedVersion, evs ...apitype.EventData) apitype.AppendResponse {
	t.Helper()
	res, err := s.Append(context.Background(), stream, exp, evs)
	if err != nil {
		t.Fatalf("append to %s expecting %q: %v", stream, exp, err)
	}
	return res
}

func wantWrongVersion(t *testing.T, err error, current int64) {
	t.Helper()
	var wv *WrongVersionError
	if !errors.As(err, &wv) || wv.Current != current {
		t.Fatalf("got %v, want a wrong expected version with the stream at %d", err, current)
	}
}

func TestAppendExpectedVersion(t *testing.T) {
	t.Parallel()
	modes(t, testAppendExpectedVersion)
}

func testAppendExpectedVersion(t *testing.T, sole bool) {
	s := newStoreMode(t, nil, nil, nil, "", sole)
	ctx := context.Background()
	_, err := s.Append(ctx, "user-1", apitype.ExpectExists, []apitype.EventData{ev("", "UserCreated", `{}`)})
	wantWrongVersion(t, err, -1)
	_, err = s.Append(ctx, "user-1", "0", []apitype.EventData{ev("", "UserCreated", `{}`)})
	wantWrongVersion(t, err, -1)

	res := mustAppend(t, s, "user-1", apitype.ExpectNoStream, ev("", "UserCreated", `{"name":"ann"}`))
	if res.FirstVersion != 0 || res.LastVersion != 0 || res.LastPosition != 1 {
		t.Fatalf("first append: %+v", res)
	}
	_, err = s.Append(ctx, "user-1", apitype.ExpectNoStream, []apitype.EventData{ev("", "UserCreated", `{}`)})
	wantWrongVersion(t, err, 0)
	mustAppend(t, s, "user-1", apitype.ExpectExists, ev("", "UserRenamed", `{"name":"bo"}`))
	mustAppend(t, s, "user-2", apitype.ExpectAny, ev("", "UserCreated", `{}`))
	_, err = s.Append(ctx, "user-1", "0", []apitype.EventData{ev("", "UserRenamed", `{}`)})
	wantWrongVersion(t, err, 1)
	res = mustAppend(t, s, "user-1", "1", ev("", "UserRenamed", `{}`), ev("", "UserRenamed", `{}`))
	if res.FirstVersion != 2 || res.LastVersion != 3 || res.FirstPosition != 4 || res.LastPosition != 5 {
		t.Fatalf("batch append: %+v, want versions 2-3 at positions 4-5", res)
	}

	for _, tc := range []struct {
		stream string
		exp    apitype.ExpectedVersion
		evs    []apitype.EventData
	}{
		{"user.1", "", []apitype.EventData{ev("", "T", "")}},
		{"user-*", "", []apitype.EventData{ev("", "T", "")}},
		{"user-1", "soon", []apitype.EventData{ev("", "T", "")}},
		{"user-1", "", nil},
		{"user-1", "", []apitype.EventData{ev("", "", "")}},
		{"user-1", "", []apitype.EventData{ev("a", "T", ""), ev("a", "T", "")}},
		{"user-1", "", []apitype.EventData{ev("", "T", "{nope")}},
	} {
		if _, err := s.Append(ctx, tc.stream, tc.exp, tc.evs); !errors.Is(err, ErrInvalid) {
			t.Errorf("append %s %q %v: %v, want an invalid request", tc.stream, tc.exp, tc.evs, err)
		}
	}
}

func TestAppendIdempotentByID(t *testing.T) {
	t.Parallel()
	modes(t, testAppendIdempotentByID)
}

func testAppendIdempotentByID(t *testing.T, sole bool) {
	s := newStoreMode(t, nil, nil, nil, "", sole)
	ctx := context.Background()
	first := mustAppend(t, s, "order-1", apitype.ExpectAny, ev("e1", "Placed", `{"n":1}`))
	// The same id with any: the window of ids recognises it.
	again := mustAppend(t, s, "order-1", apitype.ExpectAny, ev("e1", "Placed", `{"n":1}`))
	if !again.Duplicate || again.LastPosition != first.LastPosition {
		t.Fatalf("second append of e1: %+v, want a duplicate of %+v", again, first)
	}
	// A batch appended with a version, then retried with the same (now
	// stale) version: recognised by its ids, nothing stored twice.
	b1 := mustAppend(t, s, "order-1", "0", ev("e2", "Paid", ""), ev("e3", "Shipped", ""))
	b2 := mustAppend(t, s, "order-1", "0", ev("e2", "Paid", ""), ev("e3", "Shipped", ""))
	if !b2.Duplicate || b2.FirstPosition != b1.FirstPosition || b2.LastVersion != 2 {
		t.Fatalf("retried batch: %+v, want a duplicate of %+v", b2, b1)
	}
	// The same batch with any: recognised as a whole (shared: JetStream
	// refuses the batch, and the store finds it).
	b3 := mustAppend(t, s, "order-1", apitype.ExpectAny, ev("e2", "Paid", ""), ev("e3", "Shipped", ""))
	if !b3.Duplicate || b3.FirstPosition != b1.FirstPosition {
		t.Fatalf("batch again with any: %+v, want a duplicate of %+v", b3, b1)
	}
	// Another stream may use the same id: ids are per stream.
	if res := mustAppend(t, s, "order-2", apitype.ExpectAny, ev("e1", "Placed", "")); res.Duplicate {
		t.Fatalf("e1 on another stream was taken as a duplicate: %+v", res)
	}
	// A batch mixing a stored id and a new one is a conflict, not stored.
	_, err := s.Append(ctx, "order-1", apitype.ExpectAny, []apitype.EventData{ev("e3", "Shipped", ""), ev("e4", "Lost", "")})
	var ic *IDConflictError
	if !errors.As(err, &ic) {
		t.Fatalf("batch with a stored id and a new one: %v, want an id conflict", err)
	}
	got, _, err := s.ReadStream(ctx, "order-1", 0, false, 100)
	if err != nil {
		t.Fatal(err)
	}
	if ids := eventIDs(got); ids != "e1 e2 e3" {
		t.Fatalf("order-1 holds %s, want e1 e2 e3 once each", ids)
	}
	// A retry with a version the stream has moved past, whose ids were
	// stored elsewhere in it: a conflict, not a duplicate.
	mustAppend(t, s, "order-1", "2", ev("e5", "Returned", ""))
	if _, err := s.Append(ctx, "order-1", "2", []apitype.EventData{ev("e2", "Paid", "")}); err == nil {
		t.Fatal("e2 appended again after version 2: no error")
	}
}

// TestSoleWriterRemembersIDsAcrossRestarts: a store that starts anew (nubo
// up restarted, or the eventStore section reloaded) reads back the ids
// chosen within the window, so that a client's retry is still recognised;
// ids it made itself it does not need.
func TestSoleWriterRemembersIDsAcrossRestarts(t *testing.T) {
	t.Parallel()
	b := startBroker(t, t.TempDir())
	ctx := context.Background()
	s1 := newStore(t, b, nil, nil, "")
	first := mustAppend(t, s1, "cart-1", apitype.ExpectAny, ev("c1", "Added", `{"sku":"a"}`))
	mustAppend(t, s1, "cart-1", apitype.ExpectAny, ev("", "Added", `{"sku":"b"}`))
	batch := mustAppend(t, s1, "cart-1", apitype.ExpectAny, ev("c2", "Added", ""), ev("c3", "Removed", ""))
	if err := s1.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := s1.Append(ctx, "cart-1", apitype.ExpectAny, []apitype.EventData{ev("c9", "Added", "")}); !errors.Is(err, errNotRunning) {
		t.Fatalf("append after stop: %v, want %v", err, errNotRunning)
	}

	s2 := newStore(t, b, nil, nil, "")
	// A read first: it learns the head, and must not make the writer
	// skip reading the window's ids.
	if got, _, err := s2.ReadStream(ctx, "cart-1", -1, true, 1); err != nil || len(got) != 1 {
		t.Fatalf("read before the retry: %v, %v", got, err)
	}
	again := mustAppend(t, s2, "cart-1", apitype.ExpectAny, ev("c1", "Added", `{"sku":"a"}`))
	if !again.Duplicate || again.FirstPosition != first.FirstPosition || again.FirstVersion != 0 {
		t.Fatalf("c1 after a restart: %+v, want a duplicate of %+v", again, first)
	}
	b2 := mustAppend(t, s2, "cart-1", apitype.ExpectExists, ev("c2", "Added", ""), ev("c3", "Removed", ""))
	if !b2.Duplicate || b2.FirstPosition != batch.FirstPosition || b2.LastVersion != 3 {
		t.Fatalf("batch after a restart: %+v, want a duplicate of %+v", b2, batch)
	}
	next := mustAppend(t, s2, "cart-1", "3", ev("c4", "CheckedOut", ""))
	if next.Duplicate || next.FirstVersion != 4 {
		t.Fatalf("next append after a restart: %+v, want version 4", next)
	}
}

// TestSoleWriterOneWins races appenders on one sole writer that all expect
// the same version: its per-stream turns let exactly one win.
func TestSoleWriterOneWins(t *testing.T) {
	t.Parallel()
	s := newStore(t, nil, nil, nil, "")
	mustAppend(t, s, "acct-1", apitype.ExpectNoStream, ev("", "Opened", ""))
	stores := make([]*Store, 16)
	for i := range stores {
		stores[i] = s
	}
	raceAppends(t, stores)
	if n := len(s.writers.m); n != 0 {
		t.Fatalf("%d stream locks left after the appends", n)
	}
}

// raceAppends appends to acct-1, at version 1, through stores[i] from
// goroutine i, all at once: exactly one must win, the others learn the
// new version.
func raceAppends(t *testing.T, stores []*Store) {
	t.Helper()
	var wg sync.WaitGroup
	start := make(chan struct{})
	errs := make([]error, len(stores))
	for i, s := range stores {
		wg.Go(func() {
			<-start
			_, errs[i] = s.Append(context.Background(), "acct-1", "0", []apitype.EventData{ev(fmt.Sprint("w", i), "Deposited", "")})
		})
	}
	close(start)
	wg.Wait()
	wins := 0
	for _, err := range errs {
		if err == nil {
			wins++
			continue
		}
		wantWrongVersion(t, err, 1)
	}
	if wins != 1 {
		t.Fatalf("%d appenders won, want exactly 1: %v", wins, errs)
	}
}

func eventIDs(evs []apitype.RecordedEvent) string {
	out := ""
	for i, e := range evs {
		if i > 0 {
			out += " "
		}
		out += e.ID
	}
	return out
}

// TestConcurrentAppendersOneWins races appenders that all expect the same
// version, each through its own store (as replicas of nubo serve
// eventstore would be): exactly one wins, the others learn the new
// version.
func TestConcurrentAppendersOneWins(t *testing.T) {
	t.Parallel()
	b := startBroker(t, t.TempDir())
	const n = 8
	stores := make([]*Store, n)
	for i := range stores {
		stores[i] = newStoreMode(t, b, nil, nil, "", false)
	}
	mustAppend(t, stores[0], "acct-1", apitype.ExpectNoStream, ev("", "Opened", ""))
	for _, s := range stores {
		// Every store knows the head, so that none reads it late.
		h, err := s.readHead(context.Background(), "acct-1")
		if err != nil {
			t.Fatal(err)
		}
		s.heads.set("acct-1", h)
	}
	raceAppends(t, stores)
	got, _, err := stores[0].ReadStream(context.Background(), "acct-1", 0, false, 100)
	if err != nil || len(got) != 2 {
		t.Fatalf("acct-1 holds %d events (%v), want 2", len(got), err)
	}
}

func TestReadStream(t *testing.T) {
	t.Parallel()
	s := newStore(t, nil, nil, nil, "")
	ctx := context.Background()
	// Interleave two streams so that versions and positions differ.
	for i := range 10 {
		mustAppend(t, s, "a", apitype.ExpectAny, ev(fmt.Sprint("a", i), "A", fmt.Sprintf(`{"i":%d}`, i)))
		mustAppend(t, s, "b", apitype.ExpectAny, ev(fmt.Sprint("b", i), "B", ""))
	}
	for _, tc := range []struct {
		from     int64
		backward bool
		limit    int
		want     string
		next     int64
	}{
		{0, false, 3, "a0 a1 a2", 3},
		{7, false, 10, "a7 a8 a9", -1},
		{5, false, 2, "a5 a6", 7},
		{-1, true, 3, "a9 a8 a7", 6},
		{4, true, 10, "a4 a3 a2 a1 a0", -1},
		{12, false, 10, "", -1},
	} {
		got, next, err := s.ReadStream(ctx, "a", tc.from, tc.backward, tc.limit)
		if err != nil {
			t.Fatal(err)
		}
		if ids := eventIDs(got); ids != tc.want || next != tc.next {
			t.Errorf("read a from %d backward=%v limit %d = %q next %d, want %q next %d", tc.from, tc.backward, tc.limit, ids, next, tc.want, tc.next)
		}
	}
	got, _, err := s.ReadStream(ctx, "a", 5, false, 1)
	if err != nil || len(got) != 1 || got[0].Version != 5 || got[0].Position != 11 || string(got[0].Data) != `{"i":5}` || got[0].Type != "A" || got[0].Stream != "a" {
		t.Fatalf("a at 5: %+v, %v", got, err)
	}
	if got, _, err := s.ReadStream(ctx, "nothing", 0, false, 10); err != nil || len(got) != 0 {
		t.Fatalf("read of a stream with no event: %v, %v", got, err)
	}
}

func TestReadAllFilters(t *testing.T) {
	t.Parallel()
	s := newStore(t, nil, nil, nil, "")
	ctx := context.Background()
	mustAppend(t, s, "user-1", apitype.ExpectAny, ev("u1", "UserCreated", ""))
	mustAppend(t, s, "order-1", apitype.ExpectAny, ev("o1", "OrderPlaced", ""))
	mustAppend(t, s, "user-2", apitype.ExpectAny, ev("u2", "UserCreated", ""))
	mustAppend(t, s, "user-1", apitype.ExpectAny, ev("u3", "UserRenamed", ""))
	mustAppend(t, s, "user-10", apitype.ExpectAny, ev("u4", "UserDeleted", ""))
	for _, tc := range []struct {
		from    uint64
		streams string
		types   []string
		limit   int
		want    string
		next    uint64
	}{
		{1, "", nil, 100, "u1 o1 u2 u3 u4", 0},
		{1, "user-*", nil, 100, "u1 u2 u3 u4", 0},
		{1, "user-1", nil, 100, "u1 u3", 0},
		{1, "*-1", nil, 100, "u1 o1 u3", 0},
		{1, "user-*", []string{"UserCreated", "UserDeleted"}, 100, "u1 u2 u4", 0},
		{3, "", nil, 2, "u2 u3", 5},
		{5, "", nil, 100, "u4", 0},
	} {
		got, next, err := s.ReadAll(ctx, tc.from, tc.streams, tc.types, tc.limit)
		if err != nil {
			t.Fatal(err)
		}
		if ids := eventIDs(got); ids != tc.want || next != tc.next {
			t.Errorf("read all from %d %q %v = %q next %d, want %q next %d", tc.from, tc.streams, tc.types, ids, next, tc.want, tc.next)
		}
	}
	st, err := s.Streams(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Streams) != 4 || st.Events != 5 || st.LastPosition != 5 || st.Streams[1].Name != "user-1" || st.Streams[1].Version != 1 || st.Streams[1].Position != 4 {
		t.Fatalf("streams: %+v", st)
	}
}

func TestSubscribeCatchUpThenLive(t *testing.T) {
	t.Parallel()
	s := newStore(t, nil, nil, nil, "")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	mustAppend(t, s, "user-1", apitype.ExpectAny, ev("u1", "UserCreated", ""))
	mustAppend(t, s, "order-1", apitype.ExpectAny, ev("o1", "OrderPlaced", ""))
	mustAppend(t, s, "user-2", apitype.ExpectAny, ev("u2", "UserCreated", ""))
	sub, err := s.Subscribe(ctx, 2, "user-*", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	next := func() string {
		t.Helper()
		e, err := sub.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return fmt.Sprintf("%s@%d", e.ID, e.Position)
	}
	if got := next(); got != "u2@3" {
		t.Fatalf("catch-up from 2 gave %s, want u2@3", got)
	}
	// Live: appended after the subscription caught up.
	mustAppend(t, s, "order-2", apitype.ExpectAny, ev("o2", "OrderPlaced", ""))
	mustAppend(t, s, "user-3", apitype.ExpectAny, ev("u3", "UserCreated", ""))
	if got := next(); got != "u3@5" {
		t.Fatalf("live gave %s, want u3@5", got)
	}
}

// BenchmarkAppend appends one event at a time with the expected version,
// from 8 goroutines, each to its own stream (bench/eventstore compares
// this with raw JetStream), as a sole writer and as a shared one.
func BenchmarkAppend(b *testing.B) {
	for _, sole := range []bool{true, false} {
		b.Run(fmt.Sprintf("sole=%v", sole), func(b *testing.B) { benchmarkAppend(b, sole) })
	}
}

func benchmarkAppend(b *testing.B, sole bool) {
	br, err := broker.New(broker.Config{StateDir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	if err := br.Start(ctx); err != nil {
		b.Fatal(err)
	}
	defer br.Stop(ctx)
	s, err := New(Config{App: &spec.App{Name: "bench", EventStore: &spec.EventStore{}}, Broker: br, SoleWriter: sole})
	if err != nil {
		b.Fatal(err)
	}
	if err := s.Start(ctx); err != nil {
		b.Fatal(err)
	}
	defer s.Stop(ctx)
	var next sync.Mutex
	w := 0
	b.ReportAllocs()
	b.SetParallelism(8)
	b.RunParallel(func(pb *testing.PB) {
		next.Lock()
		stream := fmt.Sprint("w", w)
		w++
		next.Unlock()
		exp := apitype.ExpectNoStream
		for v := 0; pb.Next(); v++ {
			if _, err := s.Append(ctx, stream, exp, []apitype.EventData{{Type: "Counted", Data: json.RawMessage(`{"n":1}`)}}); err != nil {
				b.Fatal(err)
			}
			exp = apitype.ExpectedVersion(fmt.Sprint(v))
		}
	})
}

// TestStatusBeforeStartAndAfterStop: the console may ask while the engine
// starts or stops; the store answers an error, and its API 503.
func TestStatusBeforeStartAndAfterStop(t *testing.T) {
	t.Parallel()
	b := startBroker(t, t.TempDir())
	s, err := New(Config{App: &spec.App{Name: "shop", EventStore: projectionSpec(1, 1)}, Broker: b, Handlers: serviceHandlers{}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Status(context.Background()); err == nil {
		t.Fatal("status before start: no error")
	}
	if ps := s.Projections(context.Background()); len(ps) != 1 || ps[0].State != stateStopped {
		t.Fatalf("projections before start: %+v", ps)
	}
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()
	var e struct{ Error string }
	if code := getJSON(t, srv.URL+"/v1/eventstore/streams", &e); code != http.StatusServiceUnavailable {
		t.Fatalf("API before start: %d %+v", code, e)
	}
	// An append that passed the check while the store stopped (a reload)
	// is answered the same, with when to try again.
	rec := httptest.NewRecorder()
	writeStoreError(rec, fmt.Errorf("stream %q: %w", "s", errNotRunning))
	if rec.Code != http.StatusServiceUnavailable || rec.Header().Get("Retry-After") == "" {
		t.Fatalf("an append refused while stopping: %d %v", rec.Code, rec.Header())
	}
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Status(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := s.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Status(context.Background()); err == nil {
		t.Fatal("status after stop: no error")
	}
	if err := s.Stop(context.Background()); err != nil {
		t.Fatalf("second stop: %v", err)
	}
}

// TestSoleWriterChecksAReadHead: a sole writer trusts only heads it made.
// Its first append after reading a head (a start, or an append whose
// outcome it never learned) asks JetStream to check the head, in case an
// append of its own was still queued in the server; the next ones do not.
func TestSoleWriterChecksAReadHead(t *testing.T) {
	t.Parallel()
	s := newStore(t, nil, nil, nil, "")
	ctx := context.Background()
	checked := func(pos uint64) string {
		t.Helper()
		msgs, err := getBatch(ctx, s.nc, s.n.stream(), directGet{Seq: pos})
		if err != nil || len(msgs) != 1 {
			t.Fatalf("get %d: %v, %v", pos, msgs, err)
		}
		return msgs[0].header.Get(hdrExpLastSubjSeq)
	}
	mustAppend(t, s, "job-1", apitype.ExpectNoStream, ev("", "Queued", ""))
	mustAppend(t, s, "job-1", "0", ev("", "Started", ""))
	s.heads.drop("job-1") // as after a publish whose answer was lost
	res := mustAppend(t, s, "job-1", "1", ev("", "Done", ""))
	mustAppend(t, s, "job-1", "2", ev("", "Archived", ""))
	for pos, want := range map[uint64]string{1: "0", 2: "", 3: "2", 4: ""} {
		if got := checked(pos); got != want {
			t.Errorf("event at %d carries expected last subject sequence %q, want %q", pos, got, want)
		}
	}
	if res.FirstVersion != 2 {
		t.Fatalf("append after the drop: %+v", res)
	}
}
