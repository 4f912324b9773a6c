package metrics

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
)

// TestConcurrentQueries runs range and instant queries many at once, as a
// Grafana dashboard does on each refresh, and checks every answer byte for
// byte against the same query run alone. A query closed before its answer
// is encoded hands its buffers to the next query, and the answer then
// carries another query's points.
func TestConcurrentQueries(t *testing.T) {
	// Not parallel: its 12 workers take the machine's cores, and the other
	// tests' 50ms scrapes would time out.
	store := openStore(t)
	// 24 series over an hour at 15s, each with values no other series has,
	// so that a point borrowed from another answer cannot look right.
	const nSeries, nPoints = 24, 240
	app := store.Appender(context.Background())
	for i := range nSeries {
		lset := labels.FromStrings("__name__", "work_done_total", "job", "job"+strconv.Itoa(i%4), "instance", "i"+strconv.Itoa(i))
		for p := range nPoints {
			ts := time.Unix(t0, 0).Add(time.Duration(p) * 15 * time.Second).UnixMilli()
			v := float64(i*100_000 + p*(i+1))
			if _, err := app.Append(0, lset, 0, ts, v, nil, nil, storage.AOptions{}); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := app.Commit(); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(NewAPI(store, nil, nil, nil))
	t.Cleanup(srv.Close)

	rng := func(q string, step string) string {
		return "/api/v1/query_range?" + url.Values{"query": {q}, "start": {strconv.Itoa(t0)}, "end": {strconv.Itoa(t0 + 3600)}, "step": {step}}.Encode()
	}
	inst := func(q string, at int) string {
		return "/api/v1/query?" + url.Values{"query": {q}, "time": {strconv.Itoa(t0 + at)}}.Encode()
	}
	var paths []string
	for i := 0; i < nSeries; i += 3 {
		paths = append(paths, rng(fmt.Sprintf(`work_done_total{instance="i%d"}`, i), "15s"))
	}
	paths = append(paths,
		rng(`work_done_total`, "15s"),
		rng(`rate(work_done_total[1m])`, "30s"),
		rng(`sum by (job) (work_done_total)`, "15s"),
		rng(`work_done_total * 2 + 1`, "60s"),
		rng(`max_over_time(work_done_total[5m:1m])`, "60s"),
		inst(`work_done_total`, 1800),
		inst(`rate(work_done_total[5m])`, 3000),
		inst(`topk(5, work_done_total)`, 900),
		inst(`work_done_total[2m]`, 600),
	)

	get := func(path string) (string, error) {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			return "", err
		}
		if resp.StatusCode != http.StatusOK {
			return "", fmt.Errorf("GET %s: %s: %s", path, resp.Status, b)
		}
		return string(b), nil
	}
	alone := map[string]string{}
	for _, p := range paths {
		b, err := get(p)
		if err != nil {
			t.Fatal(err)
		}
		alone[p] = b
	}

	const workers, rounds = 12, 6
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		wrong []string
		total int
	)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := range rounds {
				for k := range paths {
					// Each worker walks the queries from its own offset, so
					// that different queries run side by side.
					p := paths[(k+w+r)%len(paths)]
					got, err := get(p)
					mu.Lock()
					total++
					if err != nil {
						wrong = append(wrong, err.Error())
					} else if got != alone[p] {
						wrong = append(wrong, fmt.Sprintf("GET %s:\n got %.300s\nwant %.300s", p, got, alone[p]))
					}
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	if len(wrong) > 0 {
		t.Fatalf("%d of %d concurrent answers differ from the same query run alone; first:\n%s", len(wrong), total, wrong[0])
	}
}
