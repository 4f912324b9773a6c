package alerting

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"slices"
	"time"

	"github.com/nubo-dev/nubo/internal/apitype"
	"github.com/nubo-dev/nubo/internal/spec"
)

// Route is apitype.Route: the wire type lives there.
type Route = apitype.Route

func routeEmpty(r Route) bool { return r.Escalation == "" && len(r.Channels) == 0 }

// Backoff is the retry policy of failed deliveries: a failed notification
// is retried, each wait twice the one before, until its group interval
// ends (see Config.GroupInterval).
type Backoff struct {
	// Initial is the wait after the first failure, doubled after each
	// further one. Default 1s.
	Initial time.Duration
	// Max caps the wait. Default 1m.
	Max time.Duration
}

// Config configures a Notifier.
type Config struct {
	// Channels by name, their ${...} references resolved (FromSpec does it).
	Channels map[string]*spec.Channel
	// Escalation policies by name.
	Escalation map[string]*spec.EscalationPolicy
	// Routes by alert name; an alert without one is written to the log.
	Routes map[string]Route
	// ExternalURL is the console's URL, sent as Alertmanager's externalURL.
	ExternalURL string
	// Dir keeps the silences across restarts; empty keeps them in memory.
	Dir string
	// Logger receives the notifier's own diagnostics; nil discards them.
	Logger *slog.Logger
	// LogLine writes what the log channel sends, and the transitions of
	// alerts that have no route; default Logger at level Info.
	LogLine func(line string)
	// Client sends webhook and Slack notifications; default a client with a
	// 10s timeout that honors the proxy environment.
	Client *http.Client
	// Retry is the retry policy of failed deliveries.
	Retry Backoff
	// GroupInterval is how long a failed notification is retried; then, as
	// Alertmanager does at its next group_interval, the group's state as it
	// is by then (its firing alerts, and the alerts resolved since the last
	// delivery) is sent instead, and so on until a delivery succeeds.
	// Default 5m, Alertmanager's default group_interval.
	GroupInterval time.Duration
	// Hostname completes the default sender address nubo@HOSTNAME of email
	// channels; default os.Hostname.
	Hostname string
}

// FromSpec builds a Config from a spec: its channels (with ${...} resolved
// through lookup, the engine's resolver), escalation policies and the routes
// of every alert rule and SLO burn-rate alert. The spec is not changed.
func FromSpec(app *spec.App, lookup func(expr string) (string, error)) (Config, error) {
	o := app.Observability
	cfg := Config{
		Channels:   map[string]*spec.Channel{},
		Escalation: o.Escalation,
		Routes:     Routes(app),
	}
	for name, c := range o.Channels {
		rc, err := resolveChannel(c, lookup)
		if err != nil {
			return Config{}, fmt.Errorf("channel %q: %w", name, err)
		}
		cfg.Channels[name] = rc
	}
	return cfg, nil
}

func resolveChannel(c *spec.Channel, lookup func(string) (string, error)) (*spec.Channel, error) {
	out := *c
	var err error
	if out.URL, err = spec.Interpolate(c.URL, lookup); err != nil {
		return nil, fmt.Errorf("url: %w", err)
	}
	out.To = slices.Clone(c.To)
	for i, to := range out.To {
		if out.To[i], err = spec.Interpolate(to, lookup); err != nil {
			return nil, fmt.Errorf("to: %w", err)
		}
	}
	if c.SMTP != nil {
		s := *c.SMTP
		for _, f := range []*string{&s.Host, &s.From, &s.Username, &s.Password} {
			if *f, err = spec.Interpolate(*f, lookup); err != nil {
				return nil, fmt.Errorf("smtp: %w", err)
			}
		}
		out.SMTP = &s
	}
	return &out, nil
}

// Routes maps every alert the spec defines to its route: observability.alerts,
// each database's monitoring.alerts, and the burn-rate alerts of SLOs (named
// by SLOAlertName).
func Routes(app *spec.App) map[string]Route {
	routes := map[string]Route{}
	add := func(rules []*spec.AlertRule) {
		for _, r := range rules {
			routes[r.Name] = Route{Escalation: r.Escalation, Channels: r.Channels}
		}
	}
	add(app.Observability.Alerts)
	for _, db := range app.Databases {
		add(db.Monitoring.Alerts)
	}
	for name, s := range app.Observability.SLOs {
		for class, a := range map[string]*spec.SLOAlert{SLOPage: s.Alerting.Page, SLOTicket: s.Alerting.Ticket} {
			if a != nil {
				routes[SLOAlertName(name, class)] = Route{Escalation: a.Escalation, Channels: a.Channels}
			}
		}
	}
	return routes
}

// The two classes of SLO burn-rate alerts.
const (
	SLOPage   = "page"
	SLOTicket = "ticket"
)

// SLOAlertName names the burn-rate alert of class page or ticket of an SLO:
// slo:NAME:page. The colons keep it apart from the names users write.
func SLOAlertName(slo, class string) string { return "slo:" + slo + ":" + class }

func withDefaults(cfg Config) (Config, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.LogLine == nil {
		l := cfg.Logger
		cfg.LogLine = func(line string) { l.Info(line) }
	}
	if cfg.Client == nil {
		cfg.Client = &http.Client{Timeout: 10 * time.Second}
	}
	if cfg.Retry.Initial <= 0 {
		cfg.Retry.Initial = time.Second
	}
	if cfg.Retry.Max <= 0 {
		cfg.Retry.Max = time.Minute
	}
	if cfg.GroupInterval <= 0 {
		cfg.GroupInterval = 5 * time.Minute
	}
	if cfg.Hostname == "" {
		cfg.Hostname, _ = os.Hostname()
		if cfg.Hostname == "" {
			cfg.Hostname = "localhost"
		}
	}
	var errs []error
	for _, name := range sortedKeys(cfg.Channels) {
		if err := checkChannel(cfg.Channels[name]); err != nil {
			errs = append(errs, fmt.Errorf("alerting: channel %q: %w", name, err))
		}
	}
	for _, name := range sortedKeys(cfg.Escalation) {
		p := cfg.Escalation[name]
		if len(p.Steps) == 0 {
			errs = append(errs, fmt.Errorf("alerting: escalation %q has no steps", name))
		}
		for i, st := range p.Steps {
			for _, ch := range st.Channels {
				if cfg.Channels[ch] == nil {
					errs = append(errs, fmt.Errorf("alerting: escalation %q step %d: no channel %q", name, i+1, ch))
				}
			}
		}
	}
	for _, alert := range sortedKeys(cfg.Routes) {
		r := cfg.Routes[alert]
		if r.Escalation != "" && cfg.Escalation[r.Escalation] == nil {
			errs = append(errs, fmt.Errorf("alerting: alert %q: no escalation policy %q", alert, r.Escalation))
		}
		for _, ch := range r.Channels {
			if cfg.Channels[ch] == nil {
				errs = append(errs, fmt.Errorf("alerting: alert %q: no channel %q", alert, ch))
			}
		}
	}
	return cfg, errors.Join(errs...)
}
