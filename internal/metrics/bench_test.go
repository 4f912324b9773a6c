package metrics

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
)

// BenchmarkDashboardQuery is the query of a typical dashboard panel,
// requests per second by service, over a day of data from 100 series (10
// services x 5 status codes x 2 replicas, a sample every 15s: 576,000
// samples): as Grafana asks it for a day at a 1m step, and as an instant
// query.
func BenchmarkDashboardQuery(b *testing.B) {
	store := openStore(b)
	const step, day = 15 * time.Second, 24 * time.Hour
	n := int(day / step)
	app := store.Appender(context.Background())
	for svc := range 10 {
		for _, code := range []string{"200", "201", "404", "500", "503"} {
			for replica := range 2 {
				lset := labels.FromStrings("__name__", "http_requests_total", "service", fmt.Sprintf("svc%d", svc),
					"code", code, "replica", strconv.Itoa(replica), "job", fmt.Sprintf("svc%d", svc),
					"instance", fmt.Sprintf("127.0.0.1:%d", 40000+svc*10+replica))
				var ref storage.SeriesRef
				v := 0.0
				for i := range n {
					v += float64(i%7 + 1)
					var err error
					ref, err = app.Append(ref, lset, 0, time.Unix(t0, 0).Add(time.Duration(i)*step).UnixMilli(), v, nil, nil, storage.AOptions{})
					if err != nil {
						b.Fatal(err)
					}
				}
			}
		}
	}
	if err := app.Commit(); err != nil {
		b.Fatal(err)
	}
	end := time.Unix(t0, 0).Add(day - step)
	const expr = `sum by (service) (rate(http_requests_total[5m]))`
	ctx := context.Background()
	b.Run("range_1d_step_1m", func(b *testing.B) {
		for b.Loop() {
			q, err := store.engine.NewRangeQuery(ctx, store.db, nil, expr, end.Add(-day), end, time.Minute)
			if err != nil {
				b.Fatal(err)
			}
			res := q.Exec(ctx)
			if res.Err != nil {
				b.Fatal(res.Err)
			}
			q.Close()
		}
	})
	b.Run("instant", func(b *testing.B) {
		for b.Loop() {
			if _, err := store.Query(ctx, expr, end); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// exposition renders n series of a counter in the Prometheus text format,
// as a client library writes them.
func exposition(n int) []byte {
	var buf bytes.Buffer
	buf.WriteString("# HELP http_requests_total Requests.\n# TYPE http_requests_total counter\n")
	for i := range n {
		fmt.Fprintf(&buf, "http_requests_total{code=\"%d\",handler=\"/api/v1/items/%d\",method=\"GET\"} %d\n", 200+i%5, i, 1000+i)
	}
	return buf.Bytes()
}

// BenchmarkIngest parses a scrape of 1,000 series and appends it to the
// TSDB, each iteration 15s after the previous one, as the scraper does;
// samples/s is the ingestion rate of one core.
func BenchmarkIngest(b *testing.B) {
	store := openStore(b)
	sc, err := NewScraper(store, ScrapeOptions{Targets: TargetFunc(func() []Target { return nil })})
	if err != nil {
		b.Fatal(err)
	}
	tg := Target{URL: "http://127.0.0.1:1/metrics", Labels: map[string]string{"job": "users", "instance": "127.0.0.1:1", "service": "users", "replica": "0"}}
	st := sc.newLoop(tg, targetLabels(tg), tg.URL)
	body := exposition(1000)
	ts := time.Unix(t0, 0)
	samples := 0
	for b.Loop() {
		st.round++
		app := store.Appender(context.Background())
		n, err := st.appendBody(context.Background(), app, body, "text/plain; version=0.0.4", ts.UnixMilli())
		if err != nil {
			b.Fatal(err)
		}
		if err := app.Commit(); err != nil {
			b.Fatal(err)
		}
		samples += n
		ts = ts.Add(15 * time.Second)
	}
	b.ReportMetric(float64(samples)/b.Elapsed().Seconds(), "samples/s")
}

// BenchmarkRSS10kSeries keeps 10,000 series (10 targets of 1,000) for an
// hour of 15s scrapes (2.4 million samples) and reports the process's
// resident memory and the Go heap in use, and how much each grew from
// before the store was opened.
func BenchmarkRSS10kSeries(b *testing.B) {
	for b.Loop() {
		// Freed memory goes back to the system first, so that the baseline
		// is this process's floor and not what earlier benchmarks left.
		debug.FreeOSMemory()
		rss0, heap0 := rssBytes(b), heapInuse()
		store, err := OpenStore(StoreOptions{Dir: b.TempDir()})
		if err != nil {
			b.Fatal(err)
		}
		sc, _ := NewScraper(store, ScrapeOptions{Targets: TargetFunc(func() []Target { return nil })})
		body := exposition(1000)
		var states []*scrapeLoop
		for i := range 10 {
			tg := Target{URL: fmt.Sprintf("http://127.0.0.1:%d/metrics", 41000+i), Labels: map[string]string{
				"job": "users", "instance": fmt.Sprintf("127.0.0.1:%d", 41000+i), "service": "users", "replica": strconv.Itoa(i),
			}}
			states = append(states, sc.newLoop(tg, targetLabels(tg), tg.URL))
		}
		ts := time.Unix(t0, 0)
		for range 240 {
			for _, st := range states {
				st.round++
				app := store.Appender(context.Background())
				if _, err := st.appendBody(context.Background(), app, body, "text/plain; version=0.0.4", ts.UnixMilli()); err != nil {
					b.Fatal(err)
				}
				if err := app.Commit(); err != nil {
					b.Fatal(err)
				}
			}
			ts = ts.Add(15 * time.Second)
		}
		debug.FreeOSMemory()
		rss, heap := rssBytes(b), heapInuse()
		if n := store.db.Head().NumSeries(); n != 10000 {
			b.Fatalf("%d series in the head, want 10000", n)
		}
		b.ReportMetric(float64(rss)/(1<<20), "MiB-rss")
		b.ReportMetric((float64(rss)-float64(rss0))/(1<<20), "MiB-rss-growth")
		b.ReportMetric(float64(heap)/(1<<20), "MiB-heap")
		b.ReportMetric((float64(heap)-float64(heap0))/(1<<20), "MiB-heap-growth")
		store.Close()
	}
}

// rssBytes reads the process's resident set from /proc (Linux only).
func rssBytes(b *testing.B) uint64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		b.Skip("no /proc/self/status:", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, _ := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb << 10
		}
	}
	b.Skip("no VmRSS in /proc/self/status")
	return 0
}

func heapInuse() uint64 {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}
