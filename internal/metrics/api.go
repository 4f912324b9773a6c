package metrics

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/prometheus/prometheus/storage"
)

// API serves the read endpoints of Prometheus' HTTP API, version 1, with
// the status codes and JSON documents Prometheus documents, so that Grafana
// (and promtool, and anything else that speaks it) can use nubo as a
// Prometheus data source:
//
//	GET|POST /api/v1/query, /api/v1/query_range, /api/v1/series, /api/v1/labels
//	GET      /api/v1/label/{name}/values
//	GET      /api/v1/rules, /api/v1/alerts, /api/v1/targets
//	GET      /api/v1/metadata, /api/v1/status/buildinfo
//	GET|POST /api/v1/query_exemplars (always empty: nubo keeps no exemplars)
//	GET|POST /api/v1/format_query, /api/v1/parse_query
//	GET      /api/v1/status/{config,flags,runtimeinfo,tsdb,tsdb/blocks,walreplay}
//	GET      /api/v1/scrape_pools, /api/v1/targets/metadata, /api/v1/alertmanagers,
//	         /api/v1/notifications, /api/v1/notifications/live
//
// and, for features nubo lacks, Prometheus' answers with the feature off:
// the admin API (/api/v1/admin/tsdb/...), the remote-write and OTLP
// receivers (/api/v1/write, /api/v1/otlp/v1/metrics).
//
// Prometheus' own web/api/v1 cannot be reused: its constructor needs a whole
// server (scrape and notifier managers, remote storage, configuration).
type API struct {
	parts func() apiParts
	log   *slog.Logger
	mux   *http.ServeMux
}

// apiParts are what the API answers from; any may be nil.
type apiParts struct {
	store   *Store
	eval    *Evaluator
	scraper *Scraper
}

// NewAPI returns the API over a store, its rules and its scraper; eval and
// scraper may be nil.
func NewAPI(store *Store, eval *Evaluator, scraper *Scraper, logger *slog.Logger) *API {
	p := apiParts{store: store, eval: eval, scraper: scraper}
	return newAPI(func() apiParts { return p }, logger)
}

func newAPI(parts func() apiParts, logger *slog.Logger) *API {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	a := &API{parts: parts, log: logger.With("component", "api"), mux: http.NewServeMux()}
	for _, method := range []string{http.MethodGet, http.MethodPost} {
		a.handleResult(method+" /api/v1/query", a.query)
		a.handleResult(method+" /api/v1/query_range", a.queryRange)
		a.handleResult(method+" /api/v1/series", a.series)
		a.handleResult(method+" /api/v1/labels", a.labelNames)
		a.handle(method+" /api/v1/query_exemplars", func(*http.Request, apiParts) (any, []string, *apiError) { return []any{}, nil, nil })
	}
	a.handleResult("GET /api/v1/label/{name}/values", a.labelValues)
	a.handle("GET /api/v1/rules", a.rules)
	a.handle("GET /api/v1/alerts", a.alerts)
	a.handle("GET /api/v1/targets", a.targets)
	a.handle("GET /api/v1/metadata", func(*http.Request, apiParts) (any, []string, *apiError) { return map[string]any{}, nil, nil })
	a.handle("GET /api/v1/status/buildinfo", func(*http.Request, apiParts) (any, []string, *apiError) { return buildInfo(), nil, nil })
	a.registerStatus()
	a.mux.HandleFunc("/api/v1/", func(w http.ResponseWriter, r *http.Request) {
		writeAPIError(w, &apiError{typ: errNotFound, err: fmt.Errorf("%s %s: not served by nubo's Prometheus API", r.Method, r.URL.Path)})
	})
	return a
}

// ServeHTTP serves the API's routes.
func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) { a.mux.ServeHTTP(w, r) }

// apiFunc answers one endpoint: data, warnings, or an error.
type apiFunc func(r *http.Request, p apiParts) (any, []string, *apiError)

// apiResult is what an endpoint answers. finalizer, when set, runs after the
// answer is written: a query's result lives in buffers the engine pools, and
// closing the query before encoding would hand them to another query while
// this answer still reads them (as web/api/v1's apiFuncResult does).
type apiResult struct {
	data      any
	warnings  []string
	infos     []string
	err       *apiError
	finalizer func()
}

// resultFunc answers one endpoint with an apiResult.
type resultFunc func(r *http.Request, p apiParts) apiResult

func (a *API) handle(pattern string, f apiFunc) {
	a.handleResult(pattern, func(r *http.Request, p apiParts) apiResult {
		data, warnings, err := f(r, p)
		return apiResult{data: data, warnings: warnings, err: err}
	})
}

func (a *API) handleResult(pattern string, f resultFunc) {
	a.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		p := a.parts()
		if p.store == nil {
			writeAPIError(w, &apiError{typ: errUnavailable, err: errors.New("the metrics store is not open yet")})
			return
		}
		if err := r.ParseForm(); err != nil {
			writeAPIError(w, &apiError{typ: errBadData, err: fmt.Errorf("error parsing form values: %w", err)})
			return
		}
		res := f(r, p)
		if res.finalizer != nil {
			defer res.finalizer()
		}
		if res.err != nil {
			writeAPIError(w, res.err)
			return
		}
		writeAPI(w, response{Status: "success", Data: res.data, Warnings: res.warnings, Infos: res.infos})
	})
}

// Error types and their HTTP status codes, as web/api/v1 has them.
type errorType struct {
	name string
	code int
}

var (
	errBadData     = errorType{"bad_data", http.StatusBadRequest}
	errExec        = errorType{"execution", http.StatusUnprocessableEntity}
	errCanceled    = errorType{"canceled", 499}
	errTimeout     = errorType{"timeout", http.StatusServiceUnavailable}
	errInternal    = errorType{"internal", http.StatusInternalServerError}
	errNotFound    = errorType{"not_found", http.StatusNotFound}
	errUnavailable = errorType{"unavailable", http.StatusServiceUnavailable}
)

type apiError struct {
	typ errorType
	err error
}

func invalidParam(name string, err error) *apiError {
	return &apiError{typ: errBadData, err: fmt.Errorf("invalid parameter %q: %w", name, err)}
}

// queryError classifies an error of a query's execution as Prometheus does.
func queryError(err error) *apiError {
	var (
		canceled promql.ErrQueryCanceled
		timeout  promql.ErrQueryTimeout
		stor     promql.ErrStorage
	)
	switch {
	case errors.As(err, &canceled), errors.Is(err, context.Canceled):
		return &apiError{typ: errCanceled, err: err}
	case errors.As(err, &timeout), errors.Is(err, context.DeadlineExceeded):
		return &apiError{typ: errTimeout, err: err}
	case errors.As(err, &stor):
		return &apiError{typ: errInternal, err: err}
	}
	return &apiError{typ: errExec, err: err}
}

// response is every answer's envelope.
type response struct {
	Status    string   `json:"status"`
	Data      any      `json:"data,omitempty"`
	ErrorType string   `json:"errorType,omitempty"`
	Error     string   `json:"error,omitempty"`
	Warnings  []string `json:"warnings,omitempty"`
	Infos     []string `json:"infos,omitempty"`
}

func writeAPI(w http.ResponseWriter, resp response) {
	b, err := json.Marshal(resp)
	if err != nil {
		writeAPIError(w, &apiError{typ: errInternal, err: fmt.Errorf("encode the answer: %w", err)})
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b)
}

func writeAPIError(w http.ResponseWriter, e *apiError) {
	b, _ := json.Marshal(response{Status: "error", ErrorType: e.typ.name, Error: e.err.Error()})
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(e.typ.code)
	_, _ = w.Write(b)
}

// queryData is the data of a query answer.
type queryData struct {
	ResultType parser.ValueType `json:"resultType"`
	Result     parser.Value     `json:"result"`
}

// The widest times a query may name, Prometheus' own bounds in milliseconds.
const (
	minTimeMs = math.MinInt64 / 2
	maxTimeMs = math.MaxInt64 / 2
)

func (a *API) query(r *http.Request, p apiParts) apiResult {
	ts := time.Now()
	if v := r.FormValue("time"); v != "" {
		t, err := parseTime(v)
		if err != nil {
			return apiResult{err: invalidParam("time", err)}
		}
		ts = t
	}
	limit, apiErr := limitParam(r)
	if apiErr != nil {
		return apiResult{err: apiErr}
	}
	ctx, cancel, apiErr := timeoutContext(r)
	if apiErr != nil {
		return apiResult{err: apiErr}
	}
	defer cancel()
	q, err := p.store.engine.NewInstantQuery(ctx, p.store.db, nil, r.FormValue("query"), ts)
	if err != nil {
		return apiResult{err: invalidParam("query", err)}
	}
	return runQuery(ctx, q, r.FormValue("query"), limit)
}

// maxPoints bounds a range query's points per series, as Prometheus does.
const maxPoints = 11000

func (a *API) queryRange(r *http.Request, p apiParts) apiResult {
	start, err := parseTime(r.FormValue("start"))
	if err != nil {
		return apiResult{err: invalidParam("start", err)}
	}
	end, err := parseTime(r.FormValue("end"))
	if err != nil {
		return apiResult{err: invalidParam("end", err)}
	}
	if end.Before(start) {
		return apiResult{err: invalidParam("end", errors.New("end timestamp must not be before start time"))}
	}
	step, err := parseDuration(r.FormValue("step"))
	if err != nil {
		return apiResult{err: invalidParam("step", err)}
	}
	if step <= 0 {
		return apiResult{err: invalidParam("step", errors.New("zero or negative query resolution step widths are not accepted. Try a positive integer"))}
	}
	if end.Sub(start)/step > maxPoints {
		return apiResult{err: &apiError{typ: errBadData, err: errors.New("exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)")}}
	}
	limit, apiErr := limitParam(r)
	if apiErr != nil {
		return apiResult{err: apiErr}
	}
	ctx, cancel, apiErr := timeoutContext(r)
	if apiErr != nil {
		return apiResult{err: apiErr}
	}
	defer cancel()
	q, err := p.store.engine.NewRangeQuery(ctx, p.store.db, nil, r.FormValue("query"), start, end, step)
	if err != nil {
		return apiResult{err: invalidParam("query", err)}
	}
	return runQuery(ctx, q, r.FormValue("query"), limit)
}

// maxWarnings bounds the warnings and infos of one answer.
const maxWarnings = 10

// runQuery executes q. The answer's finalizer closes q: its result is read
// until the answer is written.
func runQuery(ctx context.Context, q promql.Query, expr string, limit int) (res apiResult) {
	// A panic, or a return without the finalizer, must still close q.
	defer func() {
		if res.finalizer == nil {
			q.Close()
		}
	}()
	out := q.Exec(ctx)
	if out.Err != nil {
		return apiResult{err: queryError(out.Err)}
	}
	warnings, infos := out.Warnings.AsStrings(expr, maxWarnings, maxWarnings)
	val := out.Value
	if limit > 0 {
		switch v := val.(type) {
		case promql.Vector:
			if len(v) > limit {
				val = v[:limit]
				warnings = append(warnings, "results truncated due to limit")
			}
		case promql.Matrix:
			if len(v) > limit {
				val = v[:limit]
				warnings = append(warnings, "results truncated due to limit")
			}
		}
	}
	// An empty result is [], never null: clients range over it.
	switch v := val.(type) {
	case promql.Vector:
		if v == nil {
			val = promql.Vector{}
		}
	case promql.Matrix:
		if v == nil {
			val = promql.Matrix{}
		}
	}
	return apiResult{data: queryData{ResultType: val.Type(), Result: val}, warnings: warnings, infos: infos, finalizer: q.Close}
}

func (a *API) series(r *http.Request, p apiParts) (res apiResult) {
	if len(r.Form["match[]"]) == 0 {
		return apiResult{err: &apiError{typ: errBadData, err: errors.New("no match[] parameter provided")}}
	}
	sets, mint, maxt, limit, apiErr := a.selection(r, p)
	if apiErr != nil {
		return apiResult{err: apiErr}
	}
	q, err := p.store.db.Querier(mint, maxt)
	if err != nil {
		return apiResult{err: &apiError{typ: errExec, err: err}}
	}
	// The labels may point into the blocks' index, which the querier keeps
	// readable: it is closed after the answer is written.
	defer func() {
		if res.finalizer == nil {
			q.Close()
		}
	}()
	hints := &storage.SelectHints{Start: mint, End: maxt, Func: "series", Limit: limit}
	var ss []storage.SeriesSet
	for _, ms := range sets {
		ss = append(ss, q.Select(r.Context(), len(sets) > 1, hints, ms...))
	}
	set := ss[0]
	if len(ss) > 1 {
		set = storage.NewMergeSeriesSet(ss, 0, storage.ChainedSeriesMerge)
	}
	out := []labels.Labels{}
	var warnings []string
	for set.Next() {
		if limit > 0 && len(out) >= limit {
			warnings = append(warnings, "results truncated due to limit")
			break
		}
		out = append(out, set.At().Labels())
	}
	if err := set.Err(); err != nil {
		return apiResult{err: queryError(err)}
	}
	for _, w := range set.Warnings().AsErrors() {
		warnings = append(warnings, w.Error())
	}
	return apiResult{data: out, warnings: warnings, finalizer: func() { q.Close() }}
}

func (a *API) labelNames(r *http.Request, p apiParts) apiResult {
	return a.labelQuery(r, p, func(ctx context.Context, q storage.Querier, h *storage.LabelHints, ms ...*labels.Matcher) ([]string, error) {
		names, _, err := q.LabelNames(ctx, h, ms...)
		return names, err
	})
}

func (a *API) labelValues(r *http.Request, p apiParts) apiResult {
	name := r.PathValue("name")
	// Prometheus' escaping of UTF-8 label names in this path: U__ then the
	// name with _XX_ escapes.
	if strings.HasPrefix(name, "U__") {
		name = model.UnescapeName(name, model.ValueEncodingEscaping)
	}
	if name == "" {
		return apiResult{err: invalidParam("label_name", errors.New("empty label name"))}
	}
	return a.labelQuery(r, p, func(ctx context.Context, q storage.Querier, h *storage.LabelHints, ms ...*labels.Matcher) ([]string, error) {
		vals, _, err := q.LabelValues(ctx, name, h, ms...)
		return vals, err
	})
}

// labelQuery answers /labels and /label/NAME/values: the union, sorted, of
// what query returns for each match[] (or for everything).
func (a *API) labelQuery(r *http.Request, p apiParts, query func(context.Context, storage.Querier, *storage.LabelHints, ...*labels.Matcher) ([]string, error)) (res apiResult) {
	sets, mint, maxt, limit, apiErr := a.selection(r, p)
	if apiErr != nil {
		return apiResult{err: apiErr}
	}
	q, err := p.store.db.Querier(mint, maxt)
	if err != nil {
		return apiResult{err: &apiError{typ: errExec, err: err}}
	}
	// The names may point into the blocks' index: see series.
	defer func() {
		if res.finalizer == nil {
			q.Close()
		}
	}()
	if len(sets) == 0 {
		sets = [][]*labels.Matcher{nil}
	}
	seen := map[string]bool{}
	out := []string{}
	for _, ms := range sets {
		vals, err := query(r.Context(), q, &storage.LabelHints{Limit: limit}, ms...)
		if err != nil {
			return apiResult{err: queryError(err)}
		}
		for _, v := range vals {
			if !seen[v] {
				seen[v] = true
				out = append(out, v)
			}
		}
	}
	slices.Sort(out)
	var warnings []string
	if limit > 0 && len(out) > limit {
		out = out[:limit]
		warnings = append(warnings, "results truncated due to limit")
	}
	return apiResult{data: out, warnings: warnings, finalizer: func() { q.Close() }}
}

// selection reads match[], start, end and limit.
func (a *API) selection(r *http.Request, p apiParts) (sets [][]*labels.Matcher, mint, maxt int64, limit int, apiErr *apiError) {
	mint, maxt = minTimeMs, maxTimeMs
	if v := r.FormValue("start"); v != "" {
		t, err := parseTime(v)
		if err != nil {
			return nil, 0, 0, 0, invalidParam("start", err)
		}
		mint = t.UnixMilli()
	}
	if v := r.FormValue("end"); v != "" {
		t, err := parseTime(v)
		if err != nil {
			return nil, 0, 0, 0, invalidParam("end", err)
		}
		maxt = t.UnixMilli()
	}
	if limit, apiErr = limitParam(r); apiErr != nil {
		return nil, 0, 0, 0, apiErr
	}
	for _, m := range r.Form["match[]"] {
		ms, err := p.store.parser.ParseMetricSelector(m)
		if err != nil {
			return nil, 0, 0, 0, &apiError{typ: errBadData, err: err}
		}
		if !slices.ContainsFunc(ms, func(m *labels.Matcher) bool { return !m.Matches("") }) {
			return nil, 0, 0, 0, &apiError{typ: errBadData, err: errors.New("match[] must contain at least one non-empty matcher")}
		}
		sets = append(sets, ms)
	}
	return sets, mint, maxt, limit, nil
}

func limitParam(r *http.Request) (int, *apiError) {
	v := r.FormValue("limit")
	if v == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return 0, invalidParam("limit", errors.New("limit must be a non-negative integer"))
	}
	return n, nil
}

// timeoutContext bounds a query by its timeout parameter.
func timeoutContext(r *http.Request) (context.Context, context.CancelFunc, *apiError) {
	v := r.FormValue("timeout")
	if v == "" {
		ctx, cancel := context.WithCancel(r.Context())
		return ctx, cancel, nil
	}
	d, err := parseDuration(v)
	if err != nil {
		return nil, nil, invalidParam("timeout", err)
	}
	ctx, cancel := context.WithTimeout(r.Context(), d)
	return ctx, cancel, nil
}

// parseTime reads a Unix time in seconds (with a fraction) or RFC 3339.
func parseTime(s string) (time.Time, error) {
	if t, err := strconv.ParseFloat(s, 64); err == nil {
		sec, frac := math.Modf(t)
		frac = math.Round(frac*1000) / 1000
		return time.Unix(int64(sec), int64(frac*float64(time.Second))).UTC(), nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("cannot parse %q to a valid timestamp", s)
}

// parseDuration reads seconds (with a fraction) or a Prometheus duration.
func parseDuration(s string) (time.Duration, error) {
	if d, err := strconv.ParseFloat(s, 64); err == nil {
		ts := d * float64(time.Second)
		if math.IsNaN(ts) || ts >= float64(math.MaxInt64) || ts < float64(math.MinInt64) {
			return 0, fmt.Errorf("cannot parse %q to a valid duration. It overflows int64", s)
		}
		return time.Duration(ts), nil
	}
	if d, err := model.ParseDuration(s); err == nil {
		return time.Duration(d), nil
	}
	return 0, fmt.Errorf("cannot parse %q to a valid duration", s)
}

// buildInfo answers /status/buildinfo with the version of Prometheus whose
// engine nubo embeds (module v0.316.0 is Prometheus 3.16.0), which is what
// Grafana reads to choose the features it uses.
func buildInfo() map[string]string {
	version := "3.0.0"
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, m := range bi.Deps {
			if m.Path == "github.com/prometheus/prometheus" {
				version = prometheusVersion(m.Version)
			}
		}
	}
	return map[string]string{
		"version": version, "revision": "", "branch": "", "buildUser": "nubo", "buildDate": "", "goVersion": runtime.Version(),
	}
}

// prometheusVersion maps the module's v0.MMmPP.P to Prometheus' M.Mm.P:
// v0.316.0 is 3.16.0.
func prometheusVersion(mod string) string {
	parts := strings.Split(strings.TrimPrefix(mod, "v"), ".")
	if len(parts) < 3 || parts[0] != "0" || len(parts[1]) < 3 {
		return "3.0.0"
	}
	major, minor := parts[1][:1], strings.TrimLeft(parts[1][1:], "0")
	if minor == "" {
		minor = "0"
	}
	return major + "." + minor + "." + parts[2]
}
