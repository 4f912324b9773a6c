// Command events benchmarks nubo's event delivery against a plain
// JetStream pull consumer doing the same work, in one run: N events are
// published (in batches of 100, asynchronously) and delivered by HTTP POST,
// in CloudEvents binary mode, to one HTTP service, 16 deliveries at a time.
//
//   - nubo: a topic whose one subscription targets service:sink/ingest,
//     through the dispatcher (filters, metrics, retries and dead letters
//     armed, none triggered);
//   - plain: a stream and a durable pull consumer (nats.go's Messages
//     iterator) with 16 workers, each POSTing and acknowledging.
//
// Each run publishes as fast as it can (throughput: events/s from the
// first publish to the last delivery), then at a steady rate below
// capacity (latency: p50 and p99 from publish to delivery; at full speed
// latency would only measure the backlog). It prints a markdown row per
// run and the ratio of the median throughputs.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"runtime/pprof"
	"slices"
	"strconv"
	"sync"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2/event"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/nubo-dev/nubo/internal/broker"
	"github.com/nubo-dev/nubo/internal/events"
	"github.com/nubo-dev/nubo/internal/spec"
)

const (
	concurrency = 16
	batch       = 100
)

func main() {
	n := flag.Int("n", 20000, "events per throughput run")
	rate := flag.Int("rate", 500, "events/s of the latency runs")
	rounds := flag.Int("rounds", 3, "runs of each, alternating")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of the nubo runs to this file")
	flag.Parse()
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			log.Fatal(err)
		}
		profileNubo = func() func() {
			if err := pprof.StartCPUProfile(f); err != nil {
				log.Fatal(err)
			}
			return pprof.StopCPUProfile
		}
	}
	s := newSink()
	fmt.Printf("| path | events/s (%d events, full speed) | p50 at %d/s | p99 at %d/s |\n", *n, *rate, *rate)
	fmt.Println("|---|---:|---:|---:|")
	var nuboRate, plainRate []float64
	latencyN := *rate * 5
	for range *rounds {
		for _, p := range []struct {
			name string
			run  func(*sink, int, int) result
			out  *[]float64
		}{{"plain JetStream", runPlain, &plainRate}, {"nubo", runNubo, &nuboRate}} {
			thr := p.run(s, *n, 0)
			lat := p.run(s, latencyN, *rate)
			*p.out = append(*p.out, thr.rate)
			fmt.Printf("| %s | %.0f | %.2f ms | %.2f ms |\n", p.name, thr.rate, ms(lat.p50), ms(lat.p99))
		}
	}
	fmt.Printf("\nnubo / plain throughput: %.2f (medians of %d runs each)\n", median(nuboRate)/median(plainRate), *rounds)
}

// pace publishes events i..i+batch-1 no sooner than rate allows
// (rate 0: at once).
func pace(start time.Time, i, rate int) {
	if rate > 0 {
		time.Sleep(time.Until(start.Add(time.Duration(i) * time.Second / time.Duration(rate))))
	}
}

// sink is the HTTP service: it records when each event arrived.
type sink struct {
	url     string
	mu      sync.Mutex
	want    int
	arrived map[string]time.Duration // ce-id -> publish-to-delivery latency
	done    chan struct{}
}

func newSink() *sink {
	s := &sink{}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	s.url = "http://" + ln.Addr().String()
	go http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		sent, err := time.Parse(time.RFC3339Nano, r.Header.Get("ce-time"))
		now := time.Now()
		s.mu.Lock()
		if _, dup := s.arrived[r.Header.Get("ce-id")]; !dup && err == nil {
			s.arrived[r.Header.Get("ce-id")] = now.Sub(sent)
			if len(s.arrived) == s.want {
				close(s.done)
			}
		}
		s.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	return s
}

func (s *sink) reset(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.want, s.arrived, s.done = n, make(map[string]time.Duration, n), make(chan struct{})
}

type result struct {
	rate     float64
	p50, p99 time.Duration
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// wait waits for every event and measures.
func (s *sink) wait(start time.Time, n int) result {
	select {
	case <-s.done:
	case <-time.After(5 * time.Minute):
		log.Fatalf("only %d of %d events delivered in 5 minutes", len(s.arrived), n)
	}
	elapsed := time.Since(start)
	s.mu.Lock()
	lat := make([]time.Duration, 0, len(s.arrived))
	for _, d := range s.arrived {
		lat = append(lat, d)
	}
	s.mu.Unlock()
	slices.Sort(lat)
	return result{rate: float64(n) / elapsed.Seconds(), p50: lat[len(lat)/2], p99: lat[len(lat)*99/100]}
}

func newEvent(i int) *cloudevents.Event {
	ev := cloudevents.New()
	ev.SetID("e" + strconv.Itoa(i))
	ev.SetSource("bench")
	ev.SetType("Bench")
	ev.SetTime(time.Now())
	_ = ev.SetData("application/json", map[string]int{"i": i})
	return &ev
}

func startBroker() (*broker.Broker, func()) {
	dir, err := os.MkdirTemp("", "nubo-bench-events-")
	if err != nil {
		log.Fatal(err)
	}
	b, err := broker.New(broker.Config{StateDir: dir})
	if err != nil {
		log.Fatal(err)
	}
	if err := b.Start(context.Background()); err != nil {
		log.Fatal(err)
	}
	return b, func() {
		_ = b.Stop(context.Background())
		_ = os.RemoveAll(dir)
	}
}

// deliverer sends service targets to the sink.
type deliverer string

func (d deliverer) ServiceURL(string) (string, error) { return string(d), nil }

// profileNubo starts profiling a nubo run, when -cpuprofile asks for it,
// and returns what stops it.
var profileNubo = func() func() { return func() {} }

func runNubo(s *sink, n, rate int) result {
	b, stop := startBroker()
	defer stop()
	if rate == 0 {
		defer profileNubo()()
	}
	app, err := spec.Parse("bench.yaml", []byte(`
name: bench
services:
  sink: {image: sink}
topics:
  t:
    subscriptions:
      - endpoint: service:sink/ingest
`))
	if err != nil {
		log.Fatal(err)
	}
	d, err := events.New(events.Config{App: app, Broker: b, Deliverer: deliverer(s.url), Concurrency: concurrency})
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()
	if err := d.Start(ctx); err != nil {
		log.Fatal(err)
	}
	defer d.Stop(ctx)
	s.reset(n)
	start := time.Now()
	b1 := batchFor(rate)
	for i := 0; i < n; i += b1 {
		pace(start, i, rate)
		evs := make([]*cloudevents.Event, 0, batch)
		for j := i; j < min(i+b1, n); j++ {
			evs = append(evs, newEvent(j))
		}
		if _, err := d.Publish(ctx, events.Destination{Kind: events.ToTopic, Name: "t"}, evs...); err != nil {
			log.Fatal(err)
		}
	}
	return s.wait(start, n)
}

func runPlain(s *sink, n, rate int) result {
	b, stop := startBroker()
	defer stop()
	ctx := context.Background()
	js := b.JetStream()
	st, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "PLAIN", Subjects: []string{"plain"}, Storage: jetstream.FileStorage, Retention: jetstream.InterestPolicy})
	if err != nil {
		log.Fatal(err)
	}
	cons, err := st.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{Durable: "w", AckPolicy: jetstream.AckExplicitPolicy, AckWait: time.Minute, MaxDeliver: -1})
	if err != nil {
		log.Fatal(err)
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(2 * concurrency))
	if err != nil {
		log.Fatal(err)
	}
	defer it.Stop()
	// The transport nubo's dispatcher uses: idle connections for every
	// delivery in flight.
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConns = 1024
	tr.MaxIdleConnsPerHost = 256
	client := &http.Client{Timeout: 30 * time.Second, Transport: tr}
	for range concurrency {
		go func() {
			for {
				msg, err := it.Next()
				if err != nil {
					return
				}
				// The same work as nubo's: decode, POST in binary mode, ack.
				ev := cloudevents.New()
				ev.SetID(msg.Headers().Get("ce-id"))
				ev.SetSource(msg.Headers().Get("ce-source"))
				ev.SetType(msg.Headers().Get("ce-type"))
				t, _ := time.Parse(time.RFC3339Nano, msg.Headers().Get("ce-time"))
				ev.SetTime(t)
				ev.SetDataContentType(msg.Headers().Get("Content-Type"))
				ev.DataEncoded = msg.Data()
				req, err := cehttp.NewHTTPRequestFromEvent(ctx, s.url+"/ingest", ev)
				if err != nil {
					log.Fatal(err)
				}
				resp, err := client.Do(req)
				if err != nil || resp.StatusCode >= 300 {
					_ = msg.Nak()
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				_ = msg.Ack()
			}
		}()
	}
	s.reset(n)
	start := time.Now()
	b1 := batchFor(rate)
	for i := 0; i < n; i += b1 {
		pace(start, i, rate)
		futures := make([]jetstream.PubAckFuture, 0, b1)
		for j := i; j < min(i+b1, n); j++ {
			ev := newEvent(j)
			h := nats.Header{}
			h.Set("ce-specversion", "1.0")
			h.Set("ce-id", ev.ID())
			h.Set("ce-source", ev.Source())
			h.Set("ce-type", ev.Type())
			h.Set("ce-time", ev.Time().UTC().Format(time.RFC3339Nano))
			h.Set("Content-Type", ev.DataContentType())
			f, err := js.PublishMsgAsync(&nats.Msg{Subject: "plain", Header: h, Data: ev.Data()})
			if err != nil {
				log.Fatal(err)
			}
			futures = append(futures, f)
		}
		for _, f := range futures {
			select {
			case <-f.Ok():
			case err := <-f.Err():
				log.Fatal(err)
			}
		}
	}
	return s.wait(start, n)
}

// batchFor is the publish batch: 100 at full speed, 1 when paced.
func batchFor(rate int) int {
	if rate > 0 {
		return 1
	}
	return batch
}

func median(xs []float64) float64 {
	xs = slices.Clone(xs)
	slices.Sort(xs)
	return xs[len(xs)/2]
}
