package slo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql"

	"github.com/nubo-dev/nubo/internal/alerting"
	"github.com/nubo-dev/nubo/internal/apitype"
	"github.com/nubo-dev/nubo/internal/spec"
)

// QueryFunc evaluates a PromQL expression at a time; metrics.Metrics.Query
// and metrics.Store.Query fit.
type QueryFunc func(ctx context.Context, expr string, ts time.Time) (promql.Vector, error)

// Status is apitype.SLO: the wire type lives there, so that the API
// changes only where it is declared.
type Status = apitype.SLO

// IndicatorStatus is apitype.Indicator: the wire type lives there, so that the API
// changes only where it is declared.
type IndicatorStatus = apitype.Indicator

// Budget is apitype.Budget: the wire type lives there, so that the API
// changes only where it is declared.
type Budget = apitype.Budget

// BurnRate is apitype.BurnRate: the wire type lives there, so that the API
// changes only where it is declared.
type BurnRate = apitype.BurnRate

// AlertState is apitype.SLOAlert: the wire type lives there, so that the API
// changes only where it is declared.
type AlertState = apitype.SLOAlert

// Reporter reads SLOs' state. Its methods are safe for concurrent use.
type Reporter struct {
	query QueryFunc

	mu   sync.Mutex // guards slos
	slos map[string]*spec.SLO
}

// NewReporter reports on slos (observability.slos) through query.
func NewReporter(slos map[string]*spec.SLO, query QueryFunc) *Reporter {
	return &Reporter{query: query, slos: slos}
}

// SetSLOs replaces the SLOs, on a reload of the spec.
func (r *Reporter) SetSLOs(slos map[string]*spec.SLO) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.slos = slos
}

// ErrNotFound is returned for an SLO the spec does not have.
var ErrNotFound = errors.New("no such SLO")

// Statuses reads every SLO at now, by name.
func (r *Reporter) Statuses(ctx context.Context, now time.Time) ([]Status, error) {
	r.mu.Lock()
	slos := r.slos
	r.mu.Unlock()
	names := make([]string, 0, len(slos))
	for name := range slos {
		names = append(names, name)
	}
	sort.Strings(names)
	out := make([]Status, 0, len(names))
	for _, name := range names {
		st, err := r.read(ctx, name, slos[name], now)
		if err != nil {
			return nil, err
		}
		out = append(out, st)
	}
	return out, nil
}

// Status reads one SLO at now.
func (r *Reporter) Status(ctx context.Context, name string, now time.Time) (Status, error) {
	r.mu.Lock()
	s := r.slos[name]
	names := make([]string, 0, len(r.slos))
	for n := range r.slos {
		names = append(names, n)
	}
	r.mu.Unlock()
	if s == nil {
		sort.Strings(names)
		known := "the spec has none"
		if len(names) > 0 {
			known = "SLOs: " + strings.Join(names, ", ")
		}
		return Status{}, fmt.Errorf("%w %q (%s)", ErrNotFound, name, known)
	}
	return r.read(ctx, name, s, now)
}

// read queries an SLO's recorded error ratios and its alerts, and derives
// the rest: SLI = 1 - errors(window), consumed = errors(window) / budget,
// burn rate = errors(w) / budget. Where an SLO's indicators yield several
// series (written with by), the worst counts.
func (r *Reporter) read(ctx context.Context, name string, s *spec.SLO, now time.Time) (Status, error) {
	window := WindowString(Window(s))
	budget := BudgetRatio(s)
	st := Status{
		Name: name, Description: s.Description, Objective: s.Objective, Window: window,
		Indicators: []IndicatorStatus{}, BurnRates: []BurnRate{}, Alerts: []AlertState{}, Time: now,
		ErrorBudget: Budget{Total: budget, TotalSeconds: budget * Window(s).Seconds()},
	}
	sel := fmt.Sprintf(`{__name__=~"slo:(sli|indicator)_errors:ratio_rate.+",%s=%s}`, SLOLabel, strconv.Quote(name))
	vec, err := r.query(ctx, sel, now)
	if err != nil {
		return Status{}, fmt.Errorf("slo %q: read the error ratios: %w", name, err)
	}
	combined := map[string]float64{}
	byIndicator := map[string]float64{}
	for _, smp := range vec {
		if math.IsNaN(smp.F) {
			continue
		}
		metric := smp.Metric.Get(labels.MetricName)
		if w, ok := strings.CutPrefix(metric, "slo:sli_errors:ratio_rate"); ok {
			combined[w] = worst(combined, w, smp.F)
		} else if w, ok := strings.CutPrefix(metric, "slo:indicator_errors:ratio_rate"); ok && w == window {
			ind := smp.Metric.Get(IndicatorLabel)
			byIndicator[ind] = worst(byIndicator, ind, smp.F)
		}
	}
	if e, ok := combined[window]; ok {
		st.SLI = ptr(1 - e)
		st.ErrorBudget.Consumed = ptr(e / budget)
		st.ErrorBudget.Remaining = ptr(1 - e/budget)
		st.ErrorBudget.RemainingSeconds = ptr((1 - e/budget) * st.ErrorBudget.TotalSeconds)
	}
	for _, ind := range s.Indicators {
		is := IndicatorStatus{Name: ind.Name, Type: ind.Type, Weight: 1}
		if ind.Weight != nil {
			is.Weight = *ind.Weight
		}
		if e, ok := byIndicator[ind.Name]; ok {
			is.SLI = ptr(1 - e)
		}
		st.Indicators = append(st.Indicators, is)
	}
	for _, w := range allWindows(s) {
		ws := WindowString(w)
		br := BurnRate{Window: ws}
		if e, ok := combined[ws]; ok {
			br.Rate = ptr(e / budget)
		}
		st.BurnRates = append(st.BurnRates, br)
	}
	alerts, err := r.query(ctx, fmt.Sprintf(`ALERTS{%s=%s}`, SLOLabel, strconv.Quote(name)), now)
	if err != nil {
		return Status{}, fmt.Errorf("slo %q: read the alerts: %w", name, err)
	}
	for _, class := range []string{alerting.SLOPage, alerting.SLOTicket} {
		as := AlertState{Class: class, Name: alerting.SLOAlertName(name, class), State: "inactive"}
		for _, smp := range alerts {
			if smp.Metric.Get(alerting.AlertNameLabel) != as.Name {
				continue
			}
			if state := smp.Metric.Get("alertstate"); state == "firing" || as.State == "inactive" {
				as.State = state
			}
		}
		st.Alerts = append(st.Alerts, as)
	}
	return st, nil
}

// worst keeps the highest error ratio seen for key.
func worst(m map[string]float64, key string, v float64) float64 {
	if old, ok := m[key]; ok && old > v {
		return old
	}
	return v
}

func ptr(f float64) *float64 {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return nil
	}
	return &f
}

// Handler serves the SLO part of the admin API, under the paths the console
// mounts it at:
//
//	GET /admin/v1/slos          {"slos": [Status...]}
//	GET /admin/v1/slos/{name}   Status
//
// Errors are {"error": "..."}, as in the rest of the admin API.
func (r *Reporter) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /admin/v1/slos", func(w http.ResponseWriter, req *http.Request) {
		sts, err := r.Statuses(req.Context(), time.Now())
		if err != nil {
			writeJSON(w, http.StatusInternalServerError, map[string]string{"error": err.Error()})
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"slos": sts})
	})
	mux.HandleFunc("GET /admin/v1/slos/{name}", func(w http.ResponseWriter, req *http.Request) {
		st, err := r.Status(req.Context(), req.PathValue("name"), time.Now())
		switch {
		case errors.Is(err, ErrNotFound):
			writeJSON(w, http.StatusNotFound, map[string]string{"error": err.Error()})
		case err != nil:
			writeJSON(w, http.StatusInternalServerError, map[string]string{"error": err.Error()})
		default:
			writeJSON(w, http.StatusOK, st)
		}
	})
	return mux
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}
