package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"time"

	"github.com/nubo-dev/nubo/internal/apitype"
	"github.com/nubo-dev/nubo/internal/rulegroups"
	"github.com/nubo-dev/nubo/internal/spec"
)

// hoursPerMonth is a month as cloud providers bill it.
const hoursPerMonth = 730

// costKinds are the kinds of cost, in the order they are reported.
var costKinds = []string{"service", "function", "gateway"}

// costHandler serves GET /admin/v1/cost?since=24h&by=service: the cost per
// hour now (the nubo:cost_per_hour series the rules record), the cost over
// the window (rulegroups.WindowCost: the usage counters' increase), and the
// month projected from now. nubo cost and the console's cost page read it.
func (o *observability) costHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		since := r.URL.Query().Get("since")
		if since == "" {
			since = "24h"
		}
		window, err := spec.ParseDuration(since)
		if err != nil || window <= 0 {
			writeAdminError(w, http.StatusBadRequest, fmt.Sprintf("since %q: want a duration such as 1h or 24h", since))
			return
		}
		kinds := costKinds
		switch by := r.URL.Query().Get("by"); by {
		case "":
		case "service", "function", "gateway":
			kinds = []string{by}
		default:
			writeAdminError(w, http.StatusBadRequest, fmt.Sprintf("by %q: want service, function or gateway", by))
			return
		}
		app, _ := o.e.current()
		if app.Cost == nil {
			writeAdminError(w, http.StatusNotFound, "the spec has no cost section: give the prices (docs/spec.md#cost) to see costs")
			return
		}
		rep, err := o.costReport(r.Context(), app, since, window, kinds, time.Now())
		if err != nil {
			writeAdminError(w, http.StatusInternalServerError, err.Error())
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(rep)
	})
}

// costReport evaluates the cost of each kind at now.
func (o *observability) costReport(ctx context.Context, app *spec.App, since string, window time.Duration, kinds []string, now time.Time) (apitype.CostReport, error) {
	rep := apitype.CostReport{Currency: app.Cost.Currency, Window: since, Rows: []apitype.CostRow{}}
	if rep.Currency == "" {
		rep.Currency = "USD"
	}
	past := rulegroups.WindowCost(app, window)
	byName := func(expr string) (map[string]float64, error) {
		vec, err := o.metrics.Query(ctx, expr, now)
		if err != nil {
			return nil, fmt.Errorf("cost: %s: %w", expr, err)
		}
		out := make(map[string]float64, len(vec))
		for _, s := range vec {
			name := s.Metric.Get("service")
			if name == "" {
				name = s.Metric.Get("function")
			}
			out[name] = s.F
		}
		return out, nil
	}
	for _, kind := range kinds {
		perHour, err := byName("nubo:cost_per_hour:" + kind)
		if err != nil {
			return rep, err
		}
		inWindow, err := byName(past[kind])
		if err != nil {
			return rep, err
		}
		names := map[string]bool{}
		for n := range perHour {
			names[n] = true
		}
		for n := range inWindow {
			names[n] = true
		}
		for n := range names {
			rep.Rows = append(rep.Rows, apitype.CostRow{Kind: kind, Name: n, PerHour: perHour[n], Window: inWindow[n], Month: perHour[n] * hoursPerMonth})
		}
	}
	sort.Slice(rep.Rows, func(i, j int) bool {
		if rep.Rows[i].Kind != rep.Rows[j].Kind {
			return rep.Rows[i].Kind < rep.Rows[j].Kind
		}
		return rep.Rows[i].Name < rep.Rows[j].Name
	})
	return rep, nil
}
