package spec

// Observability configures metrics, logs, traces, alerts, dashboards and SLOs.
type Observability struct {
	// Metrics scraping and storage.
	Metrics Metrics `yaml:"metrics"`
	// Logs parsing, filtering and retention.
	Logs Logs `yaml:"logs"`
	// Tracing sampling and export.
	Tracing Tracing `yaml:"tracing"`
	// Alerts are PromQL alert rules.
	Alerts []*AlertRule `yaml:"alerts"`
	// Channels deliver notifications.
	Channels map[string]*Channel `yaml:"channels" names:"dns"`
	// Escalation policies: channels in steps until acknowledged.
	Escalation map[string]*EscalationPolicy `yaml:"escalation" names:"dns"`
	// Dashboards shown in the console and rendered for Grafana.
	Dashboards map[string]*Dashboard `yaml:"dashboards" names:"dns"`
	// SLOs with error budgets and burn-rate alerts.
	SLOs map[string]*SLO `yaml:"slos" names:"dns"`
}

// Metrics configures scraping and the metrics store.
type Metrics struct {
	// Interval of scrapes and rule evaluation. Default 15s.
	Interval Duration `yaml:"interval"`
	// Retention of samples. Default 360h.
	Retention Duration `yaml:"retention"`
	// Labels added to every series.
	Labels map[string]string `yaml:"labels" names:"label"`
	// Scrape lists services' metrics endpoints.
	Scrape []*ScrapeTarget `yaml:"scrape"`
}

// ScrapeTarget is a service's metrics endpoint, scraped on every replica.
type ScrapeTarget struct {
	// Service scraped.
	Service string `yaml:"service" required:"true"`
	// Path of the metrics. Default /metrics.
	Path string `yaml:"path"`
	// Port; default the replica's $PORT.
	Port int `yaml:"port" min:"0" max:"65535"`
}

// Logs configures log parsing, filtering and retention.
type Logs struct {
	// Retention of log records (and of the audit trail's). Default 720h.
	Retention Duration `yaml:"retention"`
	// Parsers turn lines that are not JSON into records.
	Parsers []*LogParser `yaml:"parsers"`
	// Filters drop, keep or redact records.
	Filters []*LogFilter `yaml:"filters"`
}

// LogParser matches lines with a regular expression with named groups.
type LogParser struct {
	// Name of the parser.
	Name string `yaml:"name" required:"true"`
	// Services whose lines it parses; none: all.
	Services []string `yaml:"services"`
	// Pattern is a Go regular expression; named groups become fields.
	Pattern string `yaml:"pattern" required:"true"`
}

// LogFilter acts on records matching a jq condition.
type LogFilter struct {
	// Name of the filter.
	Name string `yaml:"name" required:"true"`
	// Condition is a jq predicate over the parsed record.
	Condition string `yaml:"condition" required:"true"`
	// Action on a match.
	Action string `yaml:"action" required:"true" enum:"drop|keep|redact"`
	// Fields redacted, for action redact; default the whole message.
	Fields []string `yaml:"fields"`
}

// Tracing configures sampling and export of traces.
type Tracing struct {
	// SampleRate is the parent-based ratio, 0 to 1. Default 1.
	SampleRate *float64 `yaml:"sampleRate" min:"0" max:"1"`
	// Headers added on export.
	Headers map[string]string `yaml:"headers"`
	// Baggage added to every span.
	Baggage map[string]string `yaml:"baggage"`
	// Export sends traces on.
	Export TraceExport `yaml:"export"`
}

// TraceExport sends traces to another backend.
type TraceExport struct {
	// OTLP is an OTLP/HTTP endpoint; empty: kept by nubo alone.
	OTLP string `yaml:"otlp"`
}

// AlertRule is a Prometheus alerting rule.
type AlertRule struct {
	// Name of the alert.
	Name string `yaml:"name" required:"true"`
	// Expr is the PromQL condition.
	Expr string `yaml:"expr" required:"true"`
	// For is how long the condition holds before the alert fires.
	For Duration `yaml:"for"`
	// Severity label.
	Severity string `yaml:"severity" enum:"critical|warning|info"`
	// Labels added to the alert.
	Labels map[string]string `yaml:"labels" names:"label"`
	// Annotations, templated.
	Annotations map[string]string `yaml:"annotations"`
	// Escalation names an escalation policy.
	Escalation string `yaml:"escalation"`
	// Channels notified directly.
	Channels []string `yaml:"channels"`
}

// Channel delivers notifications.
type Channel struct {
	// Type of the channel.
	Type string `yaml:"type" required:"true" enum:"webhook|slack|email|log"`
	// URL for webhook and slack.
	URL string `yaml:"url"`
	// To lists the addresses, for email.
	To []string `yaml:"to"`
	// SMTP server, for email.
	SMTP *SMTP `yaml:"smtp"`
}

// SMTP is a mail server.
type SMTP struct {
	// Host of the server.
	Host string `yaml:"host" required:"true"`
	// Port of the server. Default 25.
	Port int `yaml:"port" min:"0" max:"65535"`
	// From address. Default nubo@HOSTNAME.
	From string `yaml:"from"`
	// Username for authentication.
	Username string `yaml:"username"`
	// Password for authentication; use ${secrets.NAME.KEY}.
	Password string `yaml:"password"`
}

// EscalationPolicy notifies channels in steps.
type EscalationPolicy struct {
	// Steps in order.
	Steps []*EscalationStep `yaml:"steps" required:"true"`
	// Repeat the steps after the last one.
	Repeat bool `yaml:"repeat"`
	// MaxRepeat bounds the repeats. Default 3 when repeat is set.
	MaxRepeat int `yaml:"maxRepeat" min:"0"`
}

// EscalationStep notifies channels after a delay.
type EscalationStep struct {
	// Delay since the alert fired (or the previous step).
	Delay Duration `yaml:"delay"`
	// Channels notified.
	Channels []string `yaml:"channels" required:"true"`
	// Condition under which the step runs. Default always.
	Condition string `yaml:"condition" enum:"always|unacknowledged"`
}

// Dashboard is a page of panels.
type Dashboard struct {
	// Title shown.
	Title string `yaml:"title"`
	// Refresh interval.
	Refresh Duration `yaml:"refresh"`
	// TimeRange shown by default.
	TimeRange TimeRange `yaml:"timeRange"`
	// Variables are $NAME in expressions.
	Variables []*DashboardVariable `yaml:"variables"`
	// Panels of the dashboard.
	Panels []*Panel `yaml:"panels"`
}

// TimeRange is a Grafana-style range: now-1h to now.
type TimeRange struct {
	// From, e.g. now-1h.
	From string `yaml:"from"`
	// To, e.g. now.
	To string `yaml:"to"`
}

// DashboardVariable is a template variable.
type DashboardVariable struct {
	// Name, used as $NAME.
	Name string `yaml:"name" required:"true"`
	// Type of the variable.
	Type string `yaml:"type" enum:"query|custom|constant|interval"`
	// Query for type query: label_values(METRIC, LABEL).
	Query string `yaml:"query"`
	// Values for type custom.
	Values []string `yaml:"values"`
	// Multi allows several values.
	Multi bool `yaml:"multi"`
	// IncludeAll adds an All value.
	IncludeAll bool `yaml:"includeAll"`
}

// Panel is one chart or table.
type Panel struct {
	// Title shown.
	Title string `yaml:"title" required:"true"`
	// Type of the panel. Default timeseries.
	Type string `yaml:"type" enum:"timeseries|stat|gauge|table|logs|traces"`
	// Targets are the queries.
	Targets []*PanelTarget `yaml:"targets"`
	// Thresholds color values.
	Thresholds []*Threshold `yaml:"thresholds"`
	// Axes of a timeseries.
	Axes Axes `yaml:"axes"`
}

// PanelTarget is one PromQL query of a panel.
type PanelTarget struct {
	// Expr is PromQL; $NAME are dashboard variables.
	Expr string `yaml:"expr" required:"true"`
	// Legend template, e.g. {{service}}.
	Legend string `yaml:"legend"`
	// RefID names the query, A, B, ...
	RefID string `yaml:"refId"`
}

// Threshold colors values past it.
type Threshold struct {
	// Value compared.
	Value float64 `yaml:"value"`
	// Color used.
	Color string `yaml:"color" required:"true"`
	// Op compares: gt or lt. Default gt.
	Op string `yaml:"op" enum:"gt|lt"`
}

// Axes of a timeseries panel.
type Axes struct {
	// Left axis.
	Left *Axis `yaml:"left"`
	// Right axis.
	Right *Axis `yaml:"right"`
}

// Axis is one axis of a panel.
type Axis struct {
	// Label shown.
	Label string `yaml:"label"`
	// Min value.
	Min *float64 `yaml:"min"`
	// Max value.
	Max *float64 `yaml:"max"`
	// Unit, Grafana's unit names: reqps, ms, bytes, percent.
	Unit string `yaml:"unit"`
}

// SLO is a service-level objective with error budget and burn-rate alerts.
type SLO struct {
	// Description of what the SLO promises.
	Description string `yaml:"description"`
	// Objective in percent, e.g. 99.9.
	Objective float64 `yaml:"objective" required:"true" xmin:"0" xmax:"100"`
	// Window of the objective. Default 30d.
	Window Duration `yaml:"window"`
	// Labels added to the SLO's rules.
	Labels map[string]string `yaml:"labels" names:"label"`
	// Indicators, combined by weight.
	Indicators []*Indicator `yaml:"indicators" required:"true"`
	// Alerting routes the burn-rate alerts.
	Alerting SLOAlerting `yaml:"alerting"`
}

// Indicator is one SLI: a ratio of PromQL expressions, or latency from the
// mesh or gateway duration histograms.
type Indicator struct {
	// Name of the indicator.
	Name string `yaml:"name" required:"true"`
	// Type of the indicator.
	Type string `yaml:"type" required:"true" enum:"ratio|latency"`
	// Errors is PromQL for bad events, with {{.window}}, for type ratio.
	Errors string `yaml:"errors"`
	// Total is PromQL for all events, with {{.window}}, for type ratio.
	Total string `yaml:"total"`
	// Service measured, for type latency.
	Service string `yaml:"service"`
	// Threshold: slower requests are bad, for type latency.
	Threshold Duration `yaml:"threshold"`
	// Weight of the indicator. Default 1.
	Weight *float64 `yaml:"weight" xmin:"0"`
}

// SLOAlerting routes multi-window multi-burn-rate alerts.
type SLOAlerting struct {
	// Page: fast burn (14.4x over 1h and 5m, 6x over 6h and 30m).
	Page *SLOAlert `yaml:"page"`
	// Ticket: slow burn (3x over 1d and 2h, 1x over 3d and 6h).
	Ticket *SLOAlert `yaml:"ticket"`
}

// SLOAlert routes one class of burn-rate alerts.
type SLOAlert struct {
	// Severity label.
	Severity string `yaml:"severity" enum:"critical|warning|info"`
	// Escalation policy.
	Escalation string `yaml:"escalation"`
	// Channels notified.
	Channels []string `yaml:"channels"`
}
