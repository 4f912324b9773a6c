package metrics

import (
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/rules"
)

// The documents of /api/v1/rules, /api/v1/alerts and /api/v1/targets, field
// for field as web/api/v1 writes them.

type apiRuleGroup struct {
	Name           string    `json:"name"`
	File           string    `json:"file"`
	Rules          []any     `json:"rules"`
	Interval       float64   `json:"interval"`
	Limit          int       `json:"limit"`
	EvaluationTime float64   `json:"evaluationTime"`
	LastEvaluation time.Time `json:"lastEvaluation"`
}

type apiAlertingRule struct {
	State          string           `json:"state"`
	Name           string           `json:"name"`
	Query          string           `json:"query"`
	Duration       float64          `json:"duration"`
	KeepFiringFor  float64          `json:"keepFiringFor"`
	Labels         labels.Labels    `json:"labels"`
	Annotations    labels.Labels    `json:"annotations"`
	Alerts         []apiAlert       `json:"alerts"`
	Health         rules.RuleHealth `json:"health"`
	LastError      string           `json:"lastError,omitempty"`
	EvaluationTime float64          `json:"evaluationTime"`
	LastEvaluation time.Time        `json:"lastEvaluation"`
	Type           string           `json:"type"`
}

type apiRecordingRule struct {
	Name           string           `json:"name"`
	Query          string           `json:"query"`
	Labels         labels.Labels    `json:"labels"`
	Health         rules.RuleHealth `json:"health"`
	LastError      string           `json:"lastError,omitempty"`
	EvaluationTime float64          `json:"evaluationTime"`
	LastEvaluation time.Time        `json:"lastEvaluation"`
	Type           string           `json:"type"`
}

type apiAlert struct {
	Labels      labels.Labels `json:"labels"`
	Annotations labels.Labels `json:"annotations"`
	State       string        `json:"state"`
	ActiveAt    *time.Time    `json:"activeAt,omitempty"`
	Value       string        `json:"value"`
}

func toAPIAlerts(as []*rules.Alert) []apiAlert {
	out := make([]apiAlert, 0, len(as))
	for _, a := range as {
		at := a.ActiveAt
		out = append(out, apiAlert{
			Labels: a.Labels, Annotations: a.Annotations, State: a.State.String(), ActiveAt: &at,
			Value: strconv.FormatFloat(a.Value, 'e', -1, 64),
		})
	}
	return out
}

func lastErr(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// rules answers /api/v1/rules; ?type=alert or ?type=record filters.
func (a *API) rules(r *http.Request, p apiParts) (any, []string, *apiError) {
	typ := r.FormValue("type")
	if typ != "" && typ != "alert" && typ != "record" {
		return nil, nil, invalidParam("type", errInvalidType)
	}
	groups := []apiRuleGroup{}
	if p.eval == nil {
		return map[string]any{"groups": groups}, nil, nil
	}
	for _, g := range p.eval.Groups() {
		ag := apiRuleGroup{
			Name: g.Name(), File: g.File(), Rules: []any{}, Interval: g.Interval().Seconds(), Limit: g.Limit(),
			EvaluationTime: g.GetEvaluationTime().Seconds(), LastEvaluation: g.GetLastEvaluation(),
		}
		for _, rule := range g.Rules() {
			switch rl := rule.(type) {
			case *rules.AlertingRule:
				if typ == "record" {
					continue
				}
				ag.Rules = append(ag.Rules, apiAlertingRule{
					State: rl.State().String(), Name: rl.Name(), Query: rl.Query().String(),
					Duration: rl.HoldDuration().Seconds(), KeepFiringFor: rl.KeepFiringFor().Seconds(),
					Labels: rl.Labels(), Annotations: rl.Annotations(), Alerts: toAPIAlerts(rl.ActiveAlerts()),
					Health: rl.Health(), LastError: lastErr(rl.LastError()),
					EvaluationTime: rl.GetEvaluationDuration().Seconds(), LastEvaluation: rl.GetEvaluationTimestamp(),
					Type: "alerting",
				})
			case *rules.RecordingRule:
				if typ == "alert" {
					continue
				}
				ag.Rules = append(ag.Rules, apiRecordingRule{
					Name: rl.Name(), Query: rl.Query().String(), Labels: rl.Labels(),
					Health: rl.Health(), LastError: lastErr(rl.LastError()),
					EvaluationTime: rl.GetEvaluationDuration().Seconds(), LastEvaluation: rl.GetEvaluationTimestamp(),
					Type: "recording",
				})
			}
		}
		if typ == "" || len(ag.Rules) > 0 {
			groups = append(groups, ag)
		}
	}
	return map[string]any{"groups": groups}, nil, nil
}

// alerts answers /api/v1/alerts: every pending and firing alert.
func (a *API) alerts(_ *http.Request, p apiParts) (any, []string, *apiError) {
	out := []apiAlert{}
	if p.eval != nil {
		for _, g := range p.eval.Groups() {
			for _, ar := range g.AlertingRules() {
				out = append(out, toAPIAlerts(ar.ActiveAlerts())...)
			}
		}
	}
	return map[string]any{"alerts": out}, nil, nil
}

type apiTarget struct {
	DiscoveredLabels   map[string]string `json:"discoveredLabels"`
	Labels             map[string]string `json:"labels"`
	ScrapePool         string            `json:"scrapePool"`
	ScrapeURL          string            `json:"scrapeUrl"`
	GlobalURL          string            `json:"globalUrl"`
	LastError          string            `json:"lastError"`
	LastScrape         time.Time         `json:"lastScrape"`
	LastScrapeDuration float64           `json:"lastScrapeDuration"`
	Health             string            `json:"health"`
	ScrapeInterval     string            `json:"scrapeInterval"`
	ScrapeTimeout      string            `json:"scrapeTimeout"`
}

// targets answers /api/v1/targets; nubo drops no target.
func (a *API) targets(_ *http.Request, p apiParts) (any, []string, *apiError) {
	active := []apiTarget{}
	if s := p.scraper; s != nil {
		for _, t := range s.Health() {
			active = append(active, apiTarget{
				DiscoveredLabels: t.Labels, Labels: t.Labels, ScrapePool: t.Labels["job"], ScrapeURL: t.URL, GlobalURL: t.URL,
				LastError: t.LastError, LastScrape: t.LastScrape, LastScrapeDuration: t.LastDuration.Seconds(), Health: t.Health,
				ScrapeInterval: modelDuration(s.opts.Interval), ScrapeTimeout: modelDuration(s.opts.Timeout),
			})
		}
	}
	return map[string]any{"activeTargets": active, "droppedTargets": []any{}}, nil, nil
}

// errInvalidType is the error of a /rules type that is neither alert nor
// record.
var errInvalidType = errors.New("type must be alert or record")

func modelDuration(d time.Duration) string { return model.Duration(d).String() }
