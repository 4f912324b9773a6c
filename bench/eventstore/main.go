// Command eventstore benchmarks nubo's event store on the embedded
// JetStream, in one run:
//
//   - appends/s with an expected version: 8 writers, each appending one
//     event at a time to its own stream, expecting the version it wrote
//     last, against raw JetStream synchronous publishes (8 publishers, one
//     subject each) on the same server, alternating rounds; the store as
//     nubo up runs it (a sole writer, checking versions and ids itself)
//     and as nubo serve eventstore does (JetStream's checks);
//   - projection lag at a steady rate: events appended at -rate/s to
//     streams a projection follows, delivered to an HTTP service; the lag
//     of an event is from its acknowledged append to its arrival at the
//     service, p50 and p99. It starts once the projection has caught up
//     with the events the throughput runs stored (timed apart).
//
// Beside each rate it prints the CPU time of the whole process (the
// embedded server and its clients) per append, which a shared machine's
// load disturbs far less than the rate. -checks adds raw runs that each
// carry one of JetStream's checks alone, or one header no check reads.
//
// It prints markdown rows and the ratios of the medians.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"runtime/pprof"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/nubo-dev/nubo/internal/apitype"
	"github.com/nubo-dev/nubo/internal/broker"
	"github.com/nubo-dev/nubo/internal/eventstore"
	"github.com/nubo-dev/nubo/internal/functions"
	"github.com/nubo-dev/nubo/internal/spec"
)

const writers = 8

func main() {
	dur := flag.Duration("d", 5*time.Second, "duration of each throughput run")
	rounds := flag.Int("rounds", 3, "throughput runs of each, alternating")
	rate := flag.Int("rate", 1000, "events/s of the projection lag run")
	lagDur := flag.Duration("lag", 10*time.Second, "duration of the projection lag run (0: none)")
	checks := flag.Bool("checks", false, "also run raw publishes with each of JetStream's checks alone")
	cpuprofile := flag.String("cpuprofile", "", "write CPU profiles of the first round's runs to this file name with .0, .1, ... (numbered as the medians are listed)")
	flag.Parse()
	if *rounds < 1 {
		log.Fatalf("-rounds %d: at least one round of the throughput runs", *rounds)
	}
	dir, err := os.MkdirTemp("", "nubo-eventstore-bench")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	ctx := context.Background()
	b, err := broker.New(broker.Config{StateDir: dir})
	if err != nil {
		log.Fatal(err)
	}
	if err := b.Start(ctx); err != nil {
		log.Fatal(err)
	}
	defer b.Stop(ctx)

	// The projection's service: it notes when each position arrives.
	var mu sync.Mutex
	arrived := map[uint64]time.Time{}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	go http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var batch []event.Event
		if err := json.NewDecoder(r.Body).Decode(&batch); err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		now := time.Now()
		mu.Lock()
		for _, e := range batch {
			pos, _ := strconv.ParseUint(fmt.Sprint(e.Extensions()["nuboposition"]), 10, 64)
			arrived[pos] = now
		}
		mu.Unlock()
	}))
	// The throughput runs have no projection: a projection's consumer
	// reads every appended event, which is the lag run's business.
	s, err := eventstore.New(eventstore.Config{App: &spec.App{Name: "bench", EventStore: &spec.EventStore{}}, Broker: b, SoleWriter: true})
	if err != nil {
		log.Fatal(err)
	}
	if err := s.Start(ctx); err != nil {
		log.Fatal(err)
	}
	// The same store as the replicas of nubo serve eventstore run it:
	// JetStream checks versions and ids. Its own app, so its own stream.
	shared, err := eventstore.New(eventstore.Config{App: &spec.App{Name: "shared", EventStore: &spec.EventStore{}}, Broker: b})
	if err != nil {
		log.Fatal(err)
	}
	if err := shared.Start(ctx); err != nil {
		log.Fatal(err)
	}
	js := b.JetStream()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "raw", Subjects: []string{"raw.>"}, Storage: jetstream.FileStorage, Duplicates: 2 * time.Minute}); err != nil {
		log.Fatal(err)
	}

	// The runs of a round, in order. The raw ones with one check each
	// tell what each of JetStream's checks costs by itself.
	type variant struct {
		name string
		op   func(r int) func(w, i int) error
	}
	appendTo := func(s *eventstore.Store) func(r int) func(w, i int) error {
		return func(r int) func(w, i int) error {
			return func(w, i int) error {
				exp := apitype.ExpectNoStream
				if i > 0 {
					exp = apitype.ExpectedVersion(strconv.Itoa(i - 1))
				}
				_, err := s.Append(ctx, fmt.Sprintf("w%d-%d", w, r), exp, []apitype.EventData{{Type: "Counted", Data: []byte(`{"n":1}`)}})
				return err
			}
		}
	}
	variants := []variant{
		{"nubo append, expected version (sole writer, as nubo up)", appendTo(s)},
		{"raw JetStream sync publish", func(r int) func(w, i int) error {
			return func(w, i int) error {
				_, err := js.Publish(ctx, fmt.Sprintf("raw.w%d", w), []byte(`{"d":{"n":1}}`))
				return err
			}
		}},
		{"raw JetStream sync publish, msg id and expected subject sequence", func(r int) func(w, i int) error {
			var last [writers]uint64
			return func(w, i int) error {
				ack, err := js.Publish(ctx, fmt.Sprintf("raw.c%d-%d", w, r), []byte(`{"d":{"n":1}}`),
					jetstream.WithMsgID(fmt.Sprintf("c%d-%d-%d", w, r, i)), jetstream.WithExpectLastSequencePerSubject(last[w]))
				if err == nil {
					last[w] = ack.Sequence
				}
				return err
			}
		}},
	}
	variants = append(variants, variant{"nubo append, expected version (JetStream's checks, as nubo serve eventstore)", appendTo(shared)})
	if *checks {
		variants = append(variants,
			variant{"raw JetStream sync publish, msg id and expected subject sequence, 1 s duplicates window", func(r int) func(w, i int) error {
				var last [writers]uint64
				return func(w, i int) error {
					ack, err := js.Publish(ctx, fmt.Sprintf("win.c%d-%d", w, r), []byte(`{"d":{"n":1}}`),
						jetstream.WithMsgID(fmt.Sprintf("c%d-%d-%d", w, r, i)), jetstream.WithExpectLastSequencePerSubject(last[w]))
					if err == nil {
						last[w] = ack.Sequence
					}
					return err
				}
			}},
			variant{"raw JetStream sync publish, msg id only", func(r int) func(w, i int) error {
				return func(w, i int) error {
					_, err := js.Publish(ctx, fmt.Sprintf("raw.m%d-%d", w, r), []byte(`{"d":{"n":1}}`), jetstream.WithMsgID(fmt.Sprintf("m%d-%d-%d", w, r, i)))
					return err
				}
			}},
			variant{"raw JetStream sync publish, one header that JetStream does not check", func(r int) func(w, i int) error {
				return func(w, i int) error {
					m := nats.NewMsg(fmt.Sprintf("raw.h%d-%d", w, r))
					m.Header["Nubo-Version"] = []string{strconv.Itoa(i)}
					m.Data = []byte(`{"d":{"n":1}}`)
					_, err := js.PublishMsg(ctx, m)
					return err
				}
			}},
			variant{"raw JetStream sync publish, expected subject sequence only", func(r int) func(w, i int) error {
				var last [writers]uint64
				return func(w, i int) error {
					ack, err := js.Publish(ctx, fmt.Sprintf("raw.e%d-%d", w, r), []byte(`{"d":{"n":1}}`), jetstream.WithExpectLastSequencePerSubject(last[w]))
					if err == nil {
						last[w] = ack.Sequence
					}
					return err
				}
			}})
	}

	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "win", Subjects: []string{"win.>"}, Storage: jetstream.FileStorage, Duplicates: time.Second}); err != nil {
		log.Fatal(err)
	}

	fmt.Printf("| run | appends/s | CPU µs/append |\n|---|---:|---:|\n")
	rates := make([][]float64, len(variants))
	cpus := make([][]float64, len(variants))
	for r := range *rounds {
		// Each round starts with another run: what runs first meets a
		// smaller heap and a quieter server (the dedupe windows fill up as
		// a round goes), so a fixed order favours one run.
		for j := range variants {
			k := (j + r) % len(variants)
			v := variants[k]
			var prof *os.File
			if *cpuprofile != "" && r == 0 {
				f, err := os.Create(fmt.Sprintf("%s.%d", *cpuprofile, k))
				if err != nil {
					log.Fatal(err)
				}
				prof = f
				_ = pprof.StartCPUProfile(prof)
			}
			n, cpu := run(*dur, v.op(r))
			if prof != nil {
				pprof.StopCPUProfile()
				prof.Close()
			}
			rates[k] = append(rates[k], n)
			us := float64(cpu) / float64(time.Microsecond)
			cpus[k] = append(cpus[k], us)
			fmt.Printf("| %s (round %d) | %.0f | %.1f |\n", v.name, r+1, n, us)
		}
	}
	fmt.Println()
	for k, v := range variants {
		fmt.Printf("median %s: %.0f/s, %.1f µs CPU; nubo / this %.2f (CPU %.2f)\n", v.name,
			median(rates[k]), median(cpus[k]), median(rates[0])/median(rates[k]), median(cpus[0])/median(cpus[k]))
	}
	fmt.Println()
	if *lagDur <= 0 {
		return
	}

	if err := s.Stop(ctx); err != nil {
		log.Fatal(err)
	}
	if err := shared.Stop(ctx); err != nil {
		log.Fatal(err)
	}
	es := &spec.EventStore{Projections: map[string]*spec.Projection{"lag": {
		Query:     spec.ProjectionQuery{Streams: "lag-*"},
		Handler:   spec.Target{Kind: spec.TargetService, Name: "sink", Path: "/", Text: "service:sink/"},
		BatchSize: 100, Checkpoint: 100,
	}}}
	s, err = eventstore.New(eventstore.Config{App: &spec.App{Name: "bench", EventStore: es}, Broker: b, Handlers: sink{"http://" + ln.Addr().String()}, SoleWriter: true})
	if err != nil {
		log.Fatal(err)
	}
	if err := s.Start(ctx); err != nil {
		log.Fatal(err)
	}
	defer s.Stop(ctx)
	// The projection starts at the first position, behind every event of
	// the throughput runs: its stream pattern (lag-*) is not a NATS
	// subject wildcard, so it reads them all and skips them. That
	// catch-up is timed on its own; the lag is of the steady state after.
	caught := time.Now()
	for {
		ps := s.Projections(ctx)
		if len(ps) == 1 && ps[0].State == "running" && ps[0].Lag == 0 {
			break
		}
		if time.Since(caught) > 5*time.Minute {
			log.Fatalf("the projection did not catch up in 5 minutes: %+v", ps)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if st, err := s.Status(ctx); err == nil {
		fmt.Printf("projection catch-up: %d stored events read and skipped in %v\n", st.LastPosition, time.Since(caught).Round(10*time.Millisecond))
	}
	// Projection lag at a steady rate.
	appended := map[uint64]time.Time{}
	tick := time.NewTicker(time.Second / time.Duration(*rate))
	end := time.Now().Add(*lagDur)
	for i := 0; time.Now().Before(end); i++ {
		<-tick.C
		res, err := s.Append(ctx, fmt.Sprintf("lag-%d", i%writers), apitype.ExpectAny, []apitype.EventData{{Type: "Ticked", Data: []byte(`{}`)}})
		if err != nil {
			log.Fatal(err)
		}
		appended[res.LastPosition] = time.Now()
	}
	tick.Stop()
	deadline := time.Now().Add(30 * time.Second)
	for {
		mu.Lock()
		got := len(arrived)
		mu.Unlock()
		if got >= len(appended) || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	var lags []time.Duration
	mu.Lock()
	for pos, t := range appended {
		if a, ok := arrived[pos]; ok {
			lags = append(lags, max(0, a.Sub(t)))
		}
	}
	mu.Unlock()
	slices.Sort(lags)
	if len(lags) == 0 {
		log.Fatal("the projection delivered nothing")
	}
	fmt.Printf("projection lag at %d events/s for %v: %d of %d events delivered, p50 %v, p99 %v, max %v\n",
		*rate, *lagDur, len(lags), len(appended), lags[len(lags)/2].Round(10*time.Microsecond),
		lags[len(lags)*99/100].Round(10*time.Microsecond), lags[len(lags)-1].Round(10*time.Microsecond))
}

// run calls op from `writers` goroutines for d and returns calls/s and
// the CPU time of the whole process (server and client) per call, which
// other work on a shared machine disturbs less than the rate.
func run(d time.Duration, op func(w, i int) error) (float64, time.Duration) {
	cpu0 := cpuTime()
	var total atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	end := start.Add(d)
	for w := range writers {
		wg.Go(func() {
			for i := 0; time.Now().Before(end); i++ {
				if err := op(w, i); err != nil {
					log.Fatal(err)
				}
				total.Add(1)
			}
		})
	}
	wg.Wait()
	n := total.Load()
	return float64(n) / time.Since(start).Seconds(), (cpuTime() - cpu0) / time.Duration(max(n, 1))
}

// cpuTime is the user and system CPU time of this process so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	return s[len(s)/2]
}

// sink reaches the one service of the benchmark.
type sink struct{ url string }

func (s sink) ServiceURL(string) (string, error) { return s.url, nil }
func (s sink) DeliverToFunction(context.Context, string, []*event.Event) error {
	return fmt.Errorf("no functions")
}
func (s sink) Invoke(context.Context, string, event.Event) (functions.Result, error) {
	return functions.Result{}, fmt.Errorf("no functions")
}
