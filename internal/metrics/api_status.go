package metrics

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/config"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/tsdb"
	"github.com/prometheus/prometheus/tsdb/index"
	"github.com/prometheus/prometheus/tsdb/wlog"
)

// registerStatus adds the rest of web/api/v1: what a local engine can
// answer (formatting and parsing PromQL, its configuration, flags, runtime
// and TSDB status, scrape pools), and, for the features nubo does not
// have, the answer Prometheus gives with the feature off (no admin API, no
// remote-write or OTLP receiver, no Alertmanager, no metadata).
func (a *API) registerStatus() {
	for _, method := range []string{http.MethodGet, http.MethodPost} {
		a.handle(method+" /api/v1/format_query", a.formatQuery)
		a.handle(method+" /api/v1/parse_query", a.parseQuery)
	}
	a.handle("GET /api/v1/status/config", a.statusConfig)
	a.handle("GET /api/v1/status/flags", a.statusFlags)
	a.handle("GET /api/v1/status/runtimeinfo", a.runtimeInfo)
	a.handle("GET /api/v1/status/tsdb", a.tsdbStatus)
	a.handle("GET /api/v1/status/tsdb/blocks", a.tsdbBlocks)
	a.handle("GET /api/v1/status/walreplay", a.walReplay)
	a.handle("GET /api/v1/scrape_pools", a.scrapePools)
	a.handle("GET /api/v1/targets/metadata", a.targetMetadata)
	a.handle("GET /api/v1/alertmanagers", func(*http.Request, apiParts) (any, []string, *apiError) {
		// nubo notifies through internal/alerting, not an Alertmanager.
		return map[string][]any{"activeAlertmanagers": {}, "droppedAlertmanagers": {}}, nil, nil
	})
	a.handle("GET /api/v1/notifications", func(*http.Request, apiParts) (any, []string, *apiError) {
		return []any{}, nil, nil
	})
	// Prometheus answers 204 when it has no notification stream to offer.
	a.mux.HandleFunc("GET /api/v1/notifications/live", func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusNoContent)
	})
	for _, method := range []string{http.MethodPost, http.MethodPut} {
		for _, op := range []string{"delete_series", "clean_tombstones", "snapshot"} {
			a.handle(method+" /api/v1/admin/tsdb/"+op, func(*http.Request, apiParts) (any, []string, *apiError) {
				return nil, nil, &apiError{typ: errUnavailable, err: errors.New("admin APIs disabled")}
			})
		}
	}
	// Prometheus' answers, in plain text, with its receivers off.
	a.mux.HandleFunc("POST /api/v1/write", func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "remote write receiver needs to be enabled with --web.enable-remote-write-receiver", http.StatusNotFound)
	})
	a.mux.HandleFunc("POST /api/v1/otlp/v1/metrics", func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "otlp write receiver needs to be enabled with --web.enable-otlp-receiver", http.StatusNotFound)
	})
}

func (a *API) formatQuery(r *http.Request, p apiParts) (any, []string, *apiError) {
	expr, err := p.store.parser.ParseExpr(r.FormValue("query"))
	if err != nil {
		return nil, nil, invalidParam("query", err)
	}
	return expr.Pretty(0), nil, nil
}

func (a *API) parseQuery(r *http.Request, p apiParts) (any, []string, *apiError) {
	expr, err := p.store.parser.ParseExpr(r.FormValue("query"))
	if err != nil {
		return nil, nil, invalidParam("query", err)
	}
	return translateAST(expr), nil, nil
}

// statusConfig answers the Prometheus configuration equivalent to what nubo
// does: its intervals and external labels, the rules of nubo.yaml, and a
// scrape config per job with the targets of the moment. It is written as
// Prometheus writes a loaded configuration, defaults filled in, by loading
// it with Prometheus' own loader.
func (a *API) statusConfig(_ *http.Request, p apiParts) (any, []string, *apiError) {
	global := map[string]any{}
	if s := p.scraper; s != nil {
		global["scrape_interval"] = modelDuration(s.opts.Interval)
		global["scrape_timeout"] = modelDuration(s.opts.Timeout)
		if len(s.opts.Labels) > 0 {
			global["external_labels"] = s.opts.Labels
		}
	}
	doc := map[string]any{"global": global}
	if e := p.eval; e != nil {
		global["evaluation_interval"] = modelDuration(e.opts.Interval)
		doc["rule_files"] = []string{ruleFile}
	}
	if s := p.scraper; s != nil {
		doc["scrape_configs"] = scrapeConfigs(s.Health())
	}
	// JSON is YAML, and needs no quoting rules of its own.
	text, err := json.Marshal(doc)
	if err != nil {
		return nil, nil, &apiError{typ: errInternal, err: fmt.Errorf("write the configuration: %w", err)}
	}
	cfg, err := config.Load(string(text), a.log)
	if err != nil {
		return nil, nil, &apiError{typ: errInternal, err: fmt.Errorf("load the configuration: %w", err)}
	}
	return map[string]string{"yaml": cfg.String()}, nil, nil
}

// scrapeConfigs groups targets by job into static scrape configs; a target
// whose path is not /metrics names it in __metrics_path__, as Prometheus'
// relabelling would.
func scrapeConfigs(targets []TargetHealth) []map[string]any {
	var jobs []string
	groups := map[string][]map[string]any{}
	for _, t := range targets {
		job := t.Labels["job"]
		u, err := url.Parse(t.URL)
		if err != nil || job == "" {
			continue
		}
		lbls := map[string]string{}
		for k, v := range t.Labels {
			if k != "job" && k != "instance" {
				lbls[k] = v
			}
		}
		if u.Path != "/metrics" {
			lbls[model.MetricsPathLabel] = u.Path
		}
		if inst := t.Labels["instance"]; inst != u.Host {
			lbls["instance"] = inst
		}
		if _, ok := groups[job]; !ok {
			jobs = append(jobs, job)
		}
		groups[job] = append(groups[job], map[string]any{"targets": []string{u.Host}, "labels": lbls})
	}
	slices.Sort(jobs)
	out := make([]map[string]any, 0, len(jobs))
	for _, job := range jobs {
		out = append(out, map[string]any{"job_name": job, "static_configs": groups[job]})
	}
	return out
}

// statusFlags answers the Prometheus flags whose equivalents nubo has, with
// nubo's values.
func (a *API) statusFlags(_ *http.Request, p apiParts) (any, []string, *apiError) {
	o := p.store.opts
	return map[string]string{
		"storage.tsdb.path":                o.Dir,
		"storage.tsdb.retention.time":      modelDuration(o.Retention),
		"query.lookback-delta":             modelDuration(o.LookbackDelta),
		"query.timeout":                    modelDuration(o.QueryTimeout),
		"query.max-samples":                strconv.Itoa(o.MaxSamples),
		"web.enable-admin-api":             "false",
		"web.enable-remote-write-receiver": "false",
		"web.enable-otlp-receiver":         "false",
		"enable-feature":                   "promql-at-modifier,promql-negative-offset",
	}, nil, nil
}

// runtimeInfo is web/api/v1's RuntimeInfo.
type runtimeInfo struct {
	StartTime           time.Time `json:"startTime"`
	CWD                 string    `json:"CWD"`
	Hostname            string    `json:"hostname"`
	ServerTime          time.Time `json:"serverTime"`
	ReloadConfigSuccess bool      `json:"reloadConfigSuccess"`
	LastConfigTime      time.Time `json:"lastConfigTime"`
	CorruptionCount     int64     `json:"corruptionCount"`
	GoroutineCount      int       `json:"goroutineCount"`
	GOMAXPROCS          int       `json:"GOMAXPROCS"`
	GOMEMLIMIT          int64     `json:"GOMEMLIMIT"`
	GOGC                string    `json:"GOGC"`
	GODEBUG             string    `json:"GODEBUG"`
	StorageRetention    string    `json:"storageRetention"`
}

func (a *API) runtimeInfo(_ *http.Request, p apiParts) (any, []string, *apiError) {
	cwd, _ := os.Getwd()
	host, _ := os.Hostname()
	return runtimeInfo{
		StartTime: p.store.opened, CWD: cwd, Hostname: host, ServerTime: time.Now().UTC(),
		// The rules are nubo.yaml's, loaded (or reloaded) with it.
		ReloadConfigSuccess: true, LastConfigTime: p.store.opened,
		GoroutineCount: runtime.NumGoroutine(), GOMAXPROCS: runtime.GOMAXPROCS(0),
		GOMEMLIMIT: debug.SetMemoryLimit(-1), GOGC: os.Getenv("GOGC"), GODEBUG: os.Getenv("GODEBUG"),
		StorageRetention: modelDuration(p.store.opts.Retention),
	}, nil, nil
}

// tsdbStat and tsdbStatus are web/api/v1's TSDBStat and TSDBStatus.
type tsdbStat struct {
	Name  string `json:"name"`
	Value uint64 `json:"value"`
}

type tsdbStatus struct {
	HeadStats struct {
		NumSeries     uint64 `json:"numSeries"`
		NumLabelPairs int    `json:"numLabelPairs"`
		ChunkCount    int64  `json:"chunkCount"`
		MinTime       int64  `json:"minTime"`
		MaxTime       int64  `json:"maxTime"`
	} `json:"headStats"`
	SeriesCountByMetricName     []tsdbStat `json:"seriesCountByMetricName"`
	LabelValueCountByLabelName  []tsdbStat `json:"labelValueCountByLabelName"`
	MemoryInBytesByLabelName    []tsdbStat `json:"memoryInBytesByLabelName"`
	SeriesCountByLabelValuePair []tsdbStat `json:"seriesCountByLabelValuePair"`
}

func tsdbStats(in []index.Stat) []tsdbStat {
	out := make([]tsdbStat, 0, len(in))
	for _, s := range in {
		out = append(out, tsdbStat{Name: s.Name, Value: s.Count})
	}
	return out
}

// maxTSDBLimit bounds the limit of /status/tsdb, as Prometheus does.
const maxTSDBLimit = 10000

func (a *API) tsdbStatus(r *http.Request, p apiParts) (any, []string, *apiError) {
	limit := 10
	if v := r.FormValue("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return nil, nil, &apiError{typ: errBadData, err: errors.New("limit must be a positive number")}
		}
		if n > maxTSDBLimit {
			return nil, nil, &apiError{typ: errBadData, err: fmt.Errorf("limit must not exceed %d", maxTSDBLimit)}
		}
		limit = n
	}
	s := p.store.db.Head().Stats(labels.MetricName, limit)
	var out tsdbStatus
	out.HeadStats.NumSeries, out.HeadStats.MinTime, out.HeadStats.MaxTime = s.NumSeries, s.MinTime, s.MaxTime
	out.HeadStats.NumLabelPairs = s.IndexPostingStats.NumLabelPairs
	out.HeadStats.ChunkCount = p.store.headChunks()
	out.SeriesCountByMetricName = tsdbStats(s.IndexPostingStats.CardinalityMetricsStats)
	out.LabelValueCountByLabelName = tsdbStats(s.IndexPostingStats.CardinalityLabelStats)
	out.MemoryInBytesByLabelName = tsdbStats(s.IndexPostingStats.LabelValueStats)
	out.SeriesCountByLabelValuePair = tsdbStats(s.IndexPostingStats.LabelValuePairsStats)
	return out, nil, nil
}

func (a *API) tsdbBlocks(_ *http.Request, p apiParts) (any, []string, *apiError) {
	metas := p.store.db.BlockMetas()
	if metas == nil {
		metas = []tsdb.BlockMeta{}
	}
	return map[string][]tsdb.BlockMeta{"blocks": metas}, nil, nil
}

// walReplay answers the replay of the write-ahead log's segments, which is
// over: the store is open only once it is.
func (a *API) walReplay(_ *http.Request, p apiParts) (any, []string, *apiError) {
	first, last, err := wlog.Segments(filepath.Join(p.store.opts.Dir, "wal"))
	if err != nil {
		return nil, nil, &apiError{typ: errInternal, err: fmt.Errorf("read the write-ahead log: %w", err)}
	}
	return map[string]int{"min": first, "max": last, "current": last}, nil, nil
}

func (a *API) scrapePools(_ *http.Request, p apiParts) (any, []string, *apiError) {
	pools := []string{}
	if p.scraper != nil {
		for _, t := range p.scraper.Health() {
			if job := t.Labels["job"]; job != "" && !slices.Contains(pools, job) {
				pools = append(pools, job)
			}
		}
	}
	slices.Sort(pools)
	return map[string][]string{"scrapePools": pools}, nil, nil
}

// targetMetadata answers [], as Prometheus does for targets without
// metadata: nubo keeps none.
func (a *API) targetMetadata(r *http.Request, p apiParts) (any, []string, *apiError) {
	if v := r.FormValue("limit"); v != "" {
		if _, err := strconv.Atoi(v); err != nil {
			return nil, nil, &apiError{typ: errBadData, err: errors.New("limit must be a number")}
		}
	}
	if v := r.FormValue("match_target"); v != "" {
		if _, err := p.store.parser.ParseMetricSelector(v); err != nil {
			return nil, nil, invalidParam("match_target", err)
		}
	}
	return []any{}, nil, nil
}

// headChunks is the TSDB head's chunk count, read from its
// prometheus_tsdb_head_chunks gauge when the store's registry can be
// gathered; 0 when it cannot.
func (s *Store) headChunks() int64 {
	g, ok := s.opts.Registerer.(prometheus.Gatherer)
	if !ok {
		return 0
	}
	families, err := g.Gather()
	if err != nil {
		return 0
	}
	for _, f := range families {
		if f.GetName() == "prometheus_tsdb_head_chunks" && len(f.GetMetric()) > 0 {
			return int64(f.GetMetric()[0].GetGauge().GetValue())
		}
	}
	return 0
}
