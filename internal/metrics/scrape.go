package metrics

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/model/labels"

	"github.com/nubo-dev/nubo/internal/spec"
	"github.com/nubo-dev/nubo/internal/supervisor"
)

// Target is one metrics endpoint.
type Target struct {
	// URL of the endpoint.
	URL string
	// Handler serves the endpoint in process (the engine's own registry);
	// when set, URL only names the target.
	Handler http.Handler
	// Labels identify the target and are added to each of its series, as
	// Prometheus' target labels: a scraped label of the same name is kept as
	// exported_NAME. job and instance always; service and replica for a
	// replica of a service.
	Labels map[string]string
}

// TargetSource lists the targets; the scraper asks before each round, so
// replicas that come and go are followed.
type TargetSource interface {
	Targets() []Target
}

// TargetFunc makes a function a TargetSource.
type TargetFunc func() []Target

// Targets calls f.
func (f TargetFunc) Targets() []Target { return f() }

// EngineJob is the job label of nubo's own metrics.
const EngineJob = "nubo"

// EngineTarget is the engine's own /metrics, scraped in process through h.
// instance is the console's address. The engine's series keep their own
// service and replica labels.
func EngineTarget(h http.Handler, instance string) Target {
	return Target{
		URL:     "http://" + instance + "/metrics",
		Handler: h,
		Labels:  map[string]string{"job": EngineJob, "instance": instance},
	}
}

// ServiceTargets lists the endpoints of observability.metrics.scrape on every
// live replica of the services the statuses describe (the supervisors'):
// job and service are the service's name, replica its index ($NUBO_REPLICA),
// instance 127.0.0.1:PORT, the port the entry's or else the replica's $PORT.
func ServiceTargets(scrape []*spec.ScrapeTarget, statuses []supervisor.ServiceStatus) []Target {
	byName := map[string]supervisor.ServiceStatus{}
	for _, s := range statuses {
		byName[s.Name] = s
	}
	var out []Target
	seen := map[string]bool{}
	for _, sc := range scrape {
		st, ok := byName[sc.Service]
		if !ok {
			continue
		}
		path := sc.Path
		if path == "" {
			path = "/metrics"
		}
		for _, r := range st.Replicas {
			if !alive(r.State) {
				continue
			}
			port := sc.Port
			if port == 0 {
				port = r.Port
			}
			if port == 0 {
				continue
			}
			instance := "127.0.0.1:" + strconv.Itoa(port)
			url := "http://" + instance + path
			if seen[url] {
				continue
			}
			seen[url] = true
			out = append(out, Target{URL: url, Labels: map[string]string{
				"job": sc.Service, "service": sc.Service, "replica": strconv.Itoa(r.Index), "instance": instance,
			}})
		}
	}
	return out
}

// alive reports whether a replica in state s has a process that should
// answer. A terminating one is left out, as Kubernetes takes a terminating
// pod out of its endpoints, so that its last moments do not read as down.
func alive(s supervisor.State) bool {
	return s == supervisor.StateStarting || s == supervisor.StateRunning || s == supervisor.StateReady
}

// ScrapeOptions configure a Scraper.
type ScrapeOptions struct {
	// Targets lists what to scrape; required.
	Targets TargetSource
	// Labels are added to every series that lacks them
	// (observability.metrics.labels), as Prometheus' external labels.
	Labels map[string]string
	// Interval between two scrapes of one target; default 15s.
	Interval time.Duration
	// Timeout of one scrape, from the request to the last sample appended;
	// default the smaller of 10s and Interval, and never more than Interval
	// (Prometheus refuses a scrape_timeout above scrape_interval).
	Timeout time.Duration
	// Client fetches URLs; default one that ignores the proxy environment
	// (every target is on this machine).
	Client *http.Client
	// Logger receives scrape failures at debug level.
	Logger *slog.Logger
	// Registerer receives the scraper's own metrics
	// (prometheus_target_interval_length_seconds,
	// prometheus_target_scrape_duration_seconds,
	// prometheus_target_scrapes_exceeded_body_size_limit_total); nil
	// registers none.
	Registerer prometheus.Registerer
}

// Scraper scrapes targets into a Store, with Prometheus' semantics: target
// labels, an up series and scrape_duration_seconds and
// scrape_samples_scraped per target, and staleness markers for series that
// disappear, targets that go away and scrapes that fail.
//
// As in Prometheus' scrape pool, each target has a loop of its own, and one
// scrape (fetch, parse and append) ends at its deadline, so a target that
// never answers, answers without end or answers too much delays nothing
// but itself.
type Scraper struct {
	store   *Store
	opts    ScrapeOptions
	log     *slog.Logger
	metrics *scrapeMetrics

	mu    sync.Mutex // guards loops
	loops map[string]*scrapeLoop
}

// NewScraper checks opts and returns a Scraper; it scrapes nothing yet.
func NewScraper(store *Store, opts ScrapeOptions) (*Scraper, error) {
	if store == nil || opts.Targets == nil {
		return nil, errors.New("metrics: scraper: no store or no targets")
	}
	if opts.Interval <= 0 {
		opts.Interval = 15 * time.Second
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 10 * time.Second
	}
	opts.Timeout = min(opts.Timeout, opts.Interval)
	if opts.Client == nil {
		opts.Client = &http.Client{Transport: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 2, IdleConnTimeout: 2 * opts.Interval}}
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	m, err := newScrapeMetrics(opts.Registerer, opts.Interval)
	if err != nil {
		return nil, err
	}
	return &Scraper{store: store, opts: opts, log: opts.Logger.With("component", "scrape"), metrics: m, loops: map[string]*scrapeLoop{}}, nil
}

// syncInterval is how often Run asks the source for its targets at most,
// as often as Prometheus' discovery updates its scrape pools, so that a new
// replica is scraped within seconds whatever the interval.
const syncInterval = 5 * time.Second

// Run follows the targets until ctx ends: a loop per target scrapes it
// every interval, from when it appears until it goes away, then marks its
// series stale. Run returns once every loop has.
func (s *Scraper) Run(ctx context.Context) {
	tick := time.NewTicker(min(syncInterval, s.opts.Interval))
	defer tick.Stop()
	var wg sync.WaitGroup
	// ending holds the loops stopped that may still be marking their
	// series stale, by target: a target that comes back waits for its old
	// loop, so that the staleness markers come before the new samples.
	ending := map[string]<-chan struct{}{}
	for {
		added, removed := s.sync()
		for key, done := range ending {
			select {
			case <-done:
				delete(ending, key)
			default:
			}
		}
		for _, l := range removed {
			l.cancel()
			ending[l.key] = l.done
		}
		for _, l := range added {
			l.prev = ending[l.key]
			lctx, cancel := context.WithCancel(ctx)
			l.cancel = cancel
			wg.Add(1)
			go func() {
				defer wg.Done()
				l.run(lctx)
			}()
		}
		select {
		case <-ctx.Done():
			wg.Wait()
			s.mu.Lock()
			s.loops = map[string]*scrapeLoop{}
			s.mu.Unlock()
			return
		case <-tick.C:
		}
	}
}

// Scrape asks the source for the targets, marks the series of those gone
// stale, and scrapes every target once, concurrently; it returns when every
// scrape has ended. It is for a Scraper that does not Run: tests and
// benchmarks, at chosen times.
func (s *Scraper) Scrape(ctx context.Context) {
	_, removed := s.sync()
	for _, l := range removed {
		l.markStale(time.Now())
	}
	s.mu.Lock()
	loops := make([]*scrapeLoop, 0, len(s.loops))
	for _, l := range s.loops {
		loops = append(loops, l)
	}
	s.mu.Unlock()
	var wg sync.WaitGroup
	for _, l := range loops {
		wg.Add(1)
		go func() {
			defer wg.Done()
			l.scrape(ctx)
		}()
	}
	wg.Wait()
}

// sync compares the source's targets with the loops: it returns the loops
// added and those removed, which the caller starts and stops.
func (s *Scraper) sync() (added, removed []*scrapeLoop) {
	targets := s.opts.Targets.Targets()
	s.mu.Lock()
	defer s.mu.Unlock()
	current := make(map[string]*scrapeLoop, len(targets))
	for _, t := range targets {
		lset := targetLabels(t)
		key := t.URL + lset.String()
		if _, dup := current[key]; dup {
			continue
		}
		if l, ok := s.loops[key]; ok {
			l.setTarget(t) // a handler may have been replaced
			current[key] = l
			continue
		}
		l := s.newLoop(t, lset, key)
		current[key] = l
		added = append(added, l)
	}
	for key, l := range s.loops {
		if _, ok := current[key]; !ok {
			removed = append(removed, l)
		}
	}
	s.loops = current
	return added, removed
}

func targetLabels(t Target) labels.Labels {
	b := labels.NewBuilder(labels.EmptyLabels())
	for k, v := range t.Labels {
		if v != "" {
			b.Set(k, v)
		}
	}
	return b.Labels()
}

// TargetHealth is the state of one target after its last scrape.
type TargetHealth struct {
	// URL scraped.
	URL string
	// Labels of the target.
	Labels map[string]string
	// Health is up, down, or unknown before the first scrape.
	Health string
	// LastError is the last scrape's error.
	LastError string
	// LastScrape is when it began.
	LastScrape time.Time
	// LastDuration is how long it took.
	LastDuration time.Duration
	// Samples is how many samples it read.
	Samples int
}

// Health lists the targets, by URL, as their last scrape left them; it
// does not wait for a scrape in flight.
func (s *Scraper) Health() []TargetHealth {
	s.mu.Lock()
	loops := make([]*scrapeLoop, 0, len(s.loops))
	for _, l := range s.loops {
		loops = append(loops, l)
	}
	s.mu.Unlock()
	out := make([]TargetHealth, 0, len(loops))
	for _, l := range loops {
		out = append(out, l.health())
	}
	sort.Slice(out, func(i, j int) bool { return out[i].URL < out[j].URL })
	return out
}
