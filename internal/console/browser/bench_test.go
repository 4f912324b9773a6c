package browser_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// BenchmarkPageLoad loads each page of the console afresh in Chromium, from
// navigation to the load event and to the page's content drawn, against
// the tests' small system. The peer is the floor of a page load in the same
// browser on the same machine: a static page with no script, from a Go
// server on loopback. Run it as bench/README.md says.
func BenchmarkPageLoad(b *testing.B) {
	chromium(b)
	sys := startSystemTB(b)
	br := newBrowser(b, sys.API())
	br.noShots = true

	floor := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "<!doctype html><title>floor</title><p>static</p>")
	}))
	defer floor.Close()
	b.Run("peer=static-page", func(b *testing.B) {
		var total float64
		for i := 0; i < b.N; i++ {
			br.run("static page", 30*time.Second, chromedp.Navigate(fmt.Sprintf("%s/?n=%d", floor.URL, i)))
			var load float64
			if err := br.eval(`performance.getEntriesByType("navigation")[0].loadEventEnd`, &load); err != nil {
				b.Fatal(err)
			}
			total += load
		}
		b.ReportMetric(total/float64(b.N), "load-ms")
		b.ReportMetric(0, "ns/op")
	})
	for _, page := range []string{"resources", "map", "logs", "traces", "metrics", "dashboards", "alerts", "events", "api", "cost", "audit"} {
		b.Run("page="+page, func(b *testing.B) {
			br.t = b
			var load, ready float64
			for i := 0; i < b.N; i++ {
				pl := br.open(page)
				load += pl.Load
				ready += pl.Ready
			}
			b.ReportMetric(load/float64(b.N), "load-ms")
			b.ReportMetric(ready/float64(b.N), "drawn-ms")
			b.ReportMetric(0, "ns/op")
		})
	}
}
