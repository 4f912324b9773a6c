package spec

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
)

// exprDiags returns every diagnostic of a Parse, errors and warnings, as
// strings.
func exprDiags(t *testing.T, yaml string) []string {
	t.Helper()
	app, err := Parse("t.yaml", []byte(yaml))
	var ds Diagnostics
	switch {
	case err == nil:
		ds = app.Warnings()
	case errors.As(err, &ds):
	default:
		t.Fatalf("Parse: %v", err)
	}
	out := make([]string, len(ds))
	for i, d := range ds {
		out[i] = d.String()
	}
	schemaAgrees(t, compiledSchema(t), yaml, out)
	return out
}

// atPath keeps the diagnostics of one field path.
func atPath(diags []string, path string) []string {
	var out []string
	for _, d := range diags {
		if strings.Contains(d, ": "+path+": ") {
			out = append(out, d)
		}
	}
	return out
}

// exprBase starts the specs of the tests; withF adds a function for targets
// and a topic for triggers.
const (
	exprBase = "name: t\n"
	withF    = exprBase + "functions: {f: {run: ./f}}\ntopics: {tp: {}}\n"
)

func TestExpressionErrors(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want string // FILE:LINE:COL: path: message
	}{
		{"cron six fields", withF + `
schedules:
  s: {expression: "0 0 3 * * *", target: function:f}
`, `t.yaml:6:19: schedules.s.expression: invalid cron expression "0 0 3 * * *": nubo takes 5 fields (minute hour day-of-month month day-of-week); a 6th field for seconds is not supported`},
		{"cron bad field", withF + `
schedules:
  s: {expression: "61 * * * *", target: function:f}
`, `t.yaml:6:19: schedules.s.expression: invalid cron expression "61 * * * *": end of range (61) above maximum (59): 61`},
		{"cron every not a duration", withF + `
schedules:
  s: {expression: "@every soon", target: function:f}
`, `t.yaml:6:19: schedules.s.expression: invalid cron expression "@every soon": @every takes a duration such as 30s, 5m or 1h, not "soon"`},
		{"cron every not positive", withF + `
databases:
  db:
    type: postgres
    backup: {enabled: true, schedule: "@every -5m"}
`, `t.yaml:8:39: databases.db.backup.schedule: invalid cron expression "@every -5m": @every needs a positive duration, not -5m`},
		{"cron trigger time zone alone", exprBase + "topics: {tp: {}}\n" + `
functions:
  f:
    run: ./f
    triggers: [{schedule: "TZ=UTC"}]
`, `t.yaml:7:27: functions.f.triggers[0].schedule: invalid cron expression "TZ=UTC": TZ=UTC is followed by no schedule`},

		{"promql alert", withF + `
observability:
  alerts:
    - name: a
      expr: 'sum(rate(x[5m])'
`, `t.yaml:8:13: observability.alerts[0].expr: invalid PromQL at column 16: unclosed left parenthesis`},
		{"promql database alert", withF + `
databases:
  db:
    type: postgres
    monitoring:
      alerts: [{name: a, expr: 'nosuch(up)'}]
`, `t.yaml:9:32: databases.db.monitoring.alerts[0].expr: invalid PromQL at column 1: unknown function with name "nosuch"`},
		{"promql slo after window", withF + `
observability:
  slos:
    s:
      objective: 99
      indicators:
        - {name: a, type: ratio, errors: 'rate(x[{{ .window }}]) +', total: 'rate(x[{{.window}}])'}
`, `t.yaml:10:42: observability.slos.s.indicators[0].errors: invalid PromQL at column 25: unexpected end of input`},
		{"slo unknown template", withF + `
observability:
  slos:
    s:
      objective: 99
      indicators:
        - {name: a, type: ratio, errors: 'rate(x[{{.window}}])', total: 'rate(x[{{ .Window }}])'}
`, `t.yaml:10:73: observability.slos.s.indicators[0].total: unknown template {{ .Window }}: only {{.window}} is replaced in SLO indicators`},
		{"promql panel after variables", withF + `
observability:
  dashboards:
    d:
      variables: [{name: service, type: custom, values: [a]}]
      panels:
        - title: p
          targets: [{expr: 'rate(x{service=~"$service"}[$__rate_interval]) +'}]
`, `t.yaml:11:28: observability.dashboards.d.panels[0].targets[0].expr: invalid PromQL at column 49: unexpected end of input`},
		{"promql panel error inside a range variable", withF + `
observability:
  dashboards:
    d:
      panels:
        - title: p
          targets: [{expr: 'x[$__range:$__interval:]'}]
`, `t.yaml:10:28: observability.dashboards.d.panels[0].targets[0].expr: invalid PromQL at column 23: unexpected colon ':'`},
		{"label_values selector", withF + `
observability:
  dashboards:
    d:
      variables:
        - {name: v, type: query, query: 'label_values(up{job=}, instance)'}
`, `t.yaml:9:41: observability.dashboards.d.variables[0].query: label_values: invalid PromQL at column 21: unexpected "}" in label matching, expected string`},
		{"label_values not a selector", withF + `
observability:
  dashboards:
    d:
      variables:
        - {name: v, type: query, query: 'label_values(rate(up[5m]), instance)'}
`, `t.yaml:9:41: observability.dashboards.d.variables[0].query: label_values takes a series selector such as http_requests_total{job="api"}, not "rate(up[5m])"`},

		{"jq rule transform", withF + `
rules:
  r:
    transform: '{email: .data.email, name: }'
    target: function:f
`, `t.yaml:7:16: rules.r.transform: invalid jq at column 28: unexpected token "}"`},
		{"jq rule filter nested", withF + `
rules:
  r:
    filter:
      all:
        - exact: {type: a}
        - not: {jq: '.data | nosuch'}
    target: function:f
`, `t.yaml:10:21: rules.r.filter.all[1].not.jq: invalid jq: function not defined: nosuch/0`},
		{"jq subscription filter", exprBase + "functions: {f: {run: ./f}}\n" + `
topics:
  tp:
    subscriptions:
      - endpoint: function:f
        filter: {jq: '.a =='}
`, `t.yaml:8:22: topics.tp.subscriptions[0].filter.jq: invalid jq at column 6: unexpected EOF`},
		{"jq trigger filter", exprBase + "topics: {tp: {}}\n" + `
functions:
  f:
    run: ./f
    triggers: [{topic: tp, filter: {jq: '$x'}}]
`, `t.yaml:7:41: functions.f.triggers[0].filter.jq: invalid jq: variable not defined: $x`},
		{"jq log condition", withF + `
observability:
  logs:
    filters: [{name: f, condition: '.path ==== 1', action: drop}]
`, `t.yaml:7:36: observability.logs.filters[0].condition: invalid jq at column 9: unexpected token "=="`},
		{"jq request transform unknown variable", withF + `
gateway:
  routes:
    - path: /x
      integration: {type: mock}
      request: {transform: '{id: $request.path.id, at: $now}'}
`, `t.yaml:9:28: gateway.routes[0].request.transform: invalid jq: variable not defined: $now`},
		{"jq response transform has no request", withF + `
gateway:
  routes:
    - path: /x
      integration: {type: mock}
      response: {transform: '$request'}
`, `t.yaml:9:29: gateway.routes[0].response.transform: invalid jq: variable not defined: $request`},

		{"cesql incomplete comparison", withF + `
rules:
  r:
    filter: {sql: "type = "}
    target: function:f
`, `t.yaml:7:19: rules.r.filter.sql: invalid CESQL expression "type = ": at column 8: unexpected end of input, expecting an expression`},
		{"cesql unclosed parenthesis", exprBase + "functions: {f: {run: ./f}}\n" + `
topics:
  tp:
    subscriptions:
      - endpoint: function:f
        filter: {any: [{sql: "(source = 'a'"}]}
`, `t.yaml:8:30: topics.tp.subscriptions[0].filter.any[0].sql: invalid CESQL expression "(source = 'a'": at column 14: missing ')' at end of input`},
		{"cesql like needs a string", exprBase + "topics: {tp: {}}\n" + `
functions:
  f:
    run: ./f
    triggers: [{topic: tp, filter: {sql: "type LIKE source"}}]
`, `t.yaml:7:42: functions.f.triggers[0].filter.sql: invalid CESQL expression "type LIKE source": at column 11: unexpected 'source', expecting a string`},

		{"json schema event", withF + `
events:
  com.acme.x:
    schema: {type: object, properties: {id: {type: strin}}}
`, `t.yaml:7:13: events["com.acme.x"].schema.properties.id.type: invalid JSON Schema: value must be one of 'array', 'boolean', 'integer', 'null', 'number', 'object', 'string'`},
		{"json schema model", withF + `
gateway:
  models:
    User:
      schema: {type: object, minProperties: -1}
`, `t.yaml:8:15: gateway.models.User.schema.minProperties: invalid JSON Schema: minimum: got -1, want 0`},
		{"json schema dangling ref", withF + `
events:
  X:
    schema: {$ref: "#/$defs/missing"}
`, `t.yaml:7:13: events.X.schema: invalid JSON Schema: $ref "#/$defs/missing" points to nothing in the schema`},
		{"json schema remote ref", withF + `
events:
  X:
    schema: {$ref: "https://schemas.example.com/user.json"}
`, `t.yaml:7:13: events.X.schema: invalid JSON Schema: refusing to fetch "https://schemas.example.com/user.json": nubo does not load schemas over the network; copy what it holds under $defs and refer to it as "#/$defs/NAME"`},
		{"json schema file ref", withF + `
events:
  X:
    schema: {$ref: "user.json"}
`, `t.yaml:7:13: events.X.schema: invalid JSON Schema: refusing to load "events/user.json": a schema in the spec refers only inside itself; copy what it holds under $defs and refer to it as "#/$defs/NAME"`},

		{"regexp log parser", withF + `
observability:
  logs:
    parsers: [{name: p, pattern: '^(?P<ip>\S+'}]
`, `t.yaml:7:34: observability.logs.parsers[0].pattern: invalid regular expression: missing closing ): ` + "`" + `^(?P<ip>\S+` + "`" + ``},
		{"regexp status code", withF + `
gateway:
  routes:
    - path: /x
      integration: {type: mock}
      response: {statusCodes: [{pattern: "Not*Found**", status: 404}]}
`, `t.yaml:9:42: gateway.routes[0].response.statusCodes[0].pattern: invalid regular expression: invalid nested repetition operator: ` + "`" + `**` + "`" + ``},

		{"empty filter", withF + `
rules:
  r:
    filter: {}
    target: function:f
`, `t.yaml:7:13: rules.r.filter: empty filter: set exact, prefix, suffix, all, any, not, sql or jq`},
		{"empty nested filter", withF + `
rules:
  r:
    filter: {not: {}}
    target: function:f
`, `t.yaml:7:19: rules.r.filter.not: empty filter: set exact, prefix, suffix, all, any, not, sql or jq`},
		{"empty all", withF + `
rules:
  r:
    filter: {all: []}
    target: function:f
`, `t.yaml:7:19: rules.r.filter.all: all needs at least one filter`},
		{"attribute with capitals", exprBase + "functions: {f: {run: ./f}}\n" + `
topics:
  tp:
    subscriptions:
      - endpoint: function:f
        filter: {prefix: {Type: com.acme}}
`, `t.yaml:8:27: topics.tp.subscriptions[0].filter.prefix.Type: "Type" is not a CloudEvents attribute name: those are lower-case letters and digits (type, source, subject, ...)`},
		{"attribute with a dash", exprBase + "topics: {tp: {}}\n" + `
functions:
  f:
    run: ./f
    triggers: [{topic: tp, filter: {suffix: {my-ext: x}}}]
`, `t.yaml:7:46: functions.f.triggers[0].filter.suffix.my-ext: "my-ext" is not a CloudEvents attribute name: those are lower-case letters and digits (type, source, subject, ...)`},
		{"data is no attribute", withF + `
rules:
  r:
    filter: {exact: {data: x}}
    target: function:f
`, `t.yaml:7:22: rules.r.filter.exact.data: data is the event's payload, not an attribute: match it with jq`},

		{"alert annotation template", withF + `
observability:
  alerts:
    - name: a
      expr: up == 0
      annotations: {summary: '{{ $labels.instance | shout }} is down'}
`, `t.yaml:9:30: observability.alerts[0].annotations.summary: invalid template: line 1: function "shout" not defined`},
		{"alert label template", withF + `
databases:
  db:
    type: redis
    monitoring:
      alerts:
        - name: a
          expr: up == 0
          labels: {team: '{{ if $value }}ops'}
`, `t.yaml:12:26: databases.db.monitoring.alerts[0].labels.team: invalid template: line 1: unexpected EOF`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := exprDiags(t, tt.yaml)
			path := strings.SplitN(tt.want, ": ", 3)[1]
			at := atPath(got, path)
			if len(at) != 1 || at[0] != tt.want {
				t.Errorf("diagnostics at %s:\n%s\nwant:\n%s\n(all: %q)", path, strings.Join(at, "\n"), tt.want, got)
			}
		})
	}
}

func TestExpressionWarnings(t *testing.T) {
	tests := []struct {
		name, yaml, want string
	}{
		{"parser without named group", withF + `
observability:
  logs:
    parsers: [{name: p, pattern: '^(\S+) (\d+)$'}]
`, `t.yaml:7:34: observability.logs.parsers[0].pattern: warning: the pattern has no named group, so parsed lines get no fields: name groups with (?P<name>...)`},
		{"every with a fraction of a second", withF + `
schedules:
  s: {expression: "@every 1500ms", target: function:f}
`, `t.yaml:6:19: schedules.s.expression: warning: cron runs on whole seconds: "@every 1500ms" fires every 1s`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := exprDiags(t, tt.yaml)
			path := strings.SplitN(tt.want, ": ", 3)[1]
			if at := atPath(got, path); len(at) != 1 || at[0] != tt.want {
				t.Errorf("diagnostics at %s: %q, want %q", path, at, tt.want)
			}
		})
	}
}

func TestExpressionsValid(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		path string // no diagnostic may name a path starting with it
	}{
		{"cron forms", withF + `
schedules:
  a: {expression: "*/5 9-17 * * MON-FRI", target: function:f}
  b: {expression: "@hourly", target: function:f}
  c: {expression: "@every 1h30m", target: function:f}
  d: {expression: "CRON_TZ=Europe/Paris 0 3 * * *", target: function:f}
  e: {expression: "0 0 1 jan *", target: function:f}
`, "schedules"},
		{"slo window with spaces", withF + `
observability:
  slos:
    s:
      objective: 99
      indicators:
        - {name: a, type: ratio, errors: 'sum(rate(x{code=~"5.."}[{{ .window }}]))', total: 'sum(rate(x[{{.window}}]))'}
`, "observability.slos"},
		{"grafana variables", withF + `
observability:
  dashboards:
    d:
      variables:
        - {name: service, type: query, query: 'label_values(service)'}
        - {name: label, type: query, query: 'label_values(up{job=~"$job"}, $job)'}
        - {name: job, type: query, query: 'query_result(topk(5, up))'}
        - {name: metric, type: query, query: 'metrics(http_.*)'}
        - {name: k, type: custom, values: ["5"]}
        - {name: q, type: constant, values: ["0.9"]}
        - {name: a, type: custom, values: [x]}
        - {name: shift, type: interval, values: [1h]}
        - {name: threshold, type: custom, values: ["10"]}
      panels:
        - title: p
          targets:
            - {expr: 'sum by (service) (rate(http_requests_total{service=~"$service"}[$__rate_interval]))'}
            - {expr: 'topk($k, rate(x[${__interval}] offset $shift)) by ($label) > $threshold'}
            - {expr: 'histogram_quantile($q, sum by (le) (rate(${metric:raw}_bucket{job=~"${job:regex}"}[${__range_s}s])))'}
            - {expr: '[[metric]]{a="[[a]]"} @ $__to'}
            - {expr: 'increase(x[$__range]) / $__interval_ms'}
            - {expr: 'label_replace(up, "dst", "$1", "src", "(.*)$")'}
`, "observability.dashboards.d.panels"},
		{"jq with request", withF + `
gateway:
  routes:
    - path: /users
      integration: {type: mock}
      request: {transform: '{user: ., requestId: $request.headers["x-request-id"]}'}
      response: {transform: 'del(.secret) | .items |= map(select(.visible))'}
`, "gateway.routes"},
		{"filters", withF + `
rules:
  r:
    filter:
      any:
        - exact: {type: a, myextension1: b}
        - prefix: {source: /shop}
        - sql: "type LIKE 'com.acme.%' AND EXISTS subject AND NOT (source = 'x') AND ABS(1) = 1"
        - not: {suffix: {subject: .tmp}}
      all: [{jq: '.data.total > 100'}]
    target: function:f
`, "rules.r"},
		{"schemas", withF + `
events:
  A:
    schema:
      $schema: http://json-schema.org/draft-07/schema#
      definitions: {id: {type: string}}
      properties: {id: {$ref: "#/definitions/id"}}
  B:
    schema:
      $schema: https://json-schema.org/draft/2020-12/schema
      $defs: {money: {type: number, minimum: 0.5, maximum: 10000}}
      type: object
      properties: {price: {$ref: "#/$defs/money"}, n: {type: integer, maximum: 9007199254740993}}
  C:
    schema: true
`, "events"},
		{"alert templates", withF + `
observability:
  alerts:
    - name: a
      expr: up == 0
      labels: {instance: '{{ $labels.instance }}'}
      annotations:
        summary: '{{ $labels.job }} at {{ $value | humanizePercentage }} since {{ humanizeTimestamp 0 }}'
        runbook: '{{ $externalURL }}/{{ reReplaceAll ":.*" "" $labels.instance | toUpper }}'
        value: '{{ with query "up" }}{{ . | first | value | humanize }}{{ end }}'
`, "observability.alerts"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, d := range exprDiags(t, tt.yaml) {
				if strings.Contains(d, ": "+tt.path) {
					t.Errorf("unexpected: %s", d)
				}
			}
		})
	}
}

// TestReferenceExpressions runs the expression checks alone on the reference
// spec, which holds one of nearly every kind of expression.
func TestReferenceExpressions(t *testing.T) {
	app, err := Load(referenceFile)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	r := &report{src: app.src}
	checkExpressions(app, r)
	for _, d := range r.diags {
		t.Errorf("unexpected: %s", d)
	}
}

func TestCESQLNeverPanics(t *testing.T) {
	for _, expr := range []string{
		"type = ", "(source = 'a'", "type = 'a' AND", "1 +", "'unterminated", "type ! 'x'",
		"EXISTS", "type = 'a' garbage", "a.b = 1", "", ")", "NOT", "type IN (", "LIKE", "((((",
		"9999999999999999999999 = 1",
	} {
		msg := cesqlProblem(expr)
		prefix := "invalid CESQL expression " + quote(expr) + ": "
		if !strings.HasPrefix(msg, prefix) || len(msg) <= len(prefix)+3 {
			t.Errorf("cesqlProblem(%q) = %q, want %s and a reason", expr, msg, prefix)
		}
	}
	for _, expr := range []string{"type = 'x'", "source LIKE 'a%'", "subject IN ('a', 'b') OR id = '1'", "Type = 'x'"} {
		if msg := cesqlProblem(expr); msg != "" {
			t.Errorf("cesqlProblem(%q) = %q, want none", expr, msg)
		}
	}
}

func quote(s string) string { return `"` + strings.ReplaceAll(s, `"`, `\"`) + `"` }

func TestSubstituteGrafana(t *testing.T) {
	tests := []struct{ in, out string }{
		{`rate(x[$__rate_interval])`, `rate(x[5m])`},
		{`x{service=~"$service"}`, `x{service=~"service"}`},
		{`x{service=~"${service:regex}"}`, `x{service=~"service"}`},
		{`sum by ($label) (x)`, `sum by (v_label) (x)`},
		{`[[metric]]{a='[[a]]'}`, `v_metric{a='a'}`},
		{`x[${n}m] offset $off`, `x[5m] offset 5m`},
		{`x @ $__to / $__range_s`, `x @ 60 / 60`},
		{`x > $__interval`, `x > 5m`},
		{`x{a="\"$v"}[$w]`, `x{a="\"v"}[5m]`},
		{"x{a=`$v`}", "x{a=`v`}"},
	}
	for _, tt := range tests {
		if rw, _ := substituteGrafana(tt.in, nil); rw.out != tt.out {
			t.Errorf("substituteGrafana(%q) = %q, want %q", tt.in, rw.out, tt.out)
		}
	}
}

func TestCompileSchema(t *testing.T) {
	sch, err := CompileSchema("events/UserCreated", map[string]any{
		"type":     "object",
		"required": []any{"id", "email"},
		"properties": map[string]any{
			"id":    map[string]any{"type": "integer", "minimum": int64(1)},
			"email": map[string]any{"type": "string", "format": "email"},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := sch.Validate(map[string]any{"id": 7, "email": "a@example.com"}); err != nil {
		t.Errorf("valid data refused: %v", err)
	}
	for _, bad := range []map[string]any{
		{"id": 7},
		{"id": 0, "email": "a@example.com"},
		{"id": 7, "email": "not an address"},
	} {
		if err := sch.Validate(bad); err == nil {
			t.Errorf("%v accepted", bad)
		}
	}
	if _, err := CompileSchema("gateway/models/M", map[string]any{"type": "nope"}); err == nil ||
		!strings.Contains(err.Error(), "schema gateway/models/M: at /type: ") {
		t.Errorf("bad schema: err = %v", err)
	}
}

// TestCompileSchemaFetchesNothing points a $ref (and a $schema) at a live
// server on this machine: the compile must fail without one request to it.
func TestCompileSchemaFetchesNothing(t *testing.T) {
	var requests atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"type": "string"}`))
	}))
	t.Cleanup(srv.Close)
	for _, schema := range []map[string]any{
		{"$ref": srv.URL + "/user.json"},
		{"properties": map[string]any{"a": map[string]any{"$ref": srv.URL + "/a.json#/x"}}},
		{"$schema": srv.URL + "/meta", "type": "string"},
	} {
		_, err := CompileSchema("events/X", schema)
		if err == nil || !strings.Contains(err.Error(), "refusing to fetch \""+srv.URL) {
			t.Errorf("CompileSchema(%v): err = %v, want a refusal", schema, err)
		}
	}
	if n := requests.Load(); n != 0 {
		t.Errorf("the server got %d requests", n)
	}
}
