package spec

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"text/template"
	"time"
	"unicode/utf8"

	"github.com/itchyny/gojq"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/robfig/cron/v3"
)

// checkExpressions compiles every expression a spec holds (cron, PromQL, jq,
// CESQL, JSON Schema, regular expressions, alert templates) with the library
// that will run it later, so that a typo fails `nubo validate` at its line
// instead of `nubo up` minutes later, or never.
func checkExpressions(a *App, r *report) {
	c := &exprChecker{r: r, prom: parser.NewParser(parser.Options{}), tmplFuncs: alertTemplateFuncs()}

	for _, name := range sortedKeys(a.Schedules) {
		c.cron(joinPath(joinPath("schedules", name), "expression"), a.Schedules[name].Expression)
	}
	for _, name := range sortedKeys(a.Databases) {
		db := a.Databases[name]
		path := joinPath("databases", name)
		if db.Backup.Schedule != "" {
			c.cron(path+".backup.schedule", db.Backup.Schedule)
		}
		c.alerts(path+".monitoring.alerts", db.Monitoring.Alerts)
	}
	for _, name := range sortedKeys(a.Functions) {
		for i, t := range a.Functions[name].Triggers {
			path := indexPath(joinPath("functions", name)+".triggers", i)
			if t.Schedule != "" {
				c.cron(path+".schedule", t.Schedule)
			}
			c.filter(path+".filter", t.Filter)
		}
	}

	for _, typ := range sortedKeys(a.Events) {
		if s := a.Events[typ].Schema; s != nil {
			c.schema(joinPath(joinPath("events", typ), "schema"), "events/"+typ, s)
		}
	}
	for _, name := range sortedKeys(a.Rules) {
		rule := a.Rules[name]
		path := joinPath("rules", name)
		c.filter(path+".filter", rule.Filter)
		c.jq(path+".transform", rule.Transform)
	}
	for _, name := range sortedKeys(a.Topics) {
		for i, s := range a.Topics[name].Subscriptions {
			c.filter(indexPath(joinPath("topics", name)+".subscriptions", i)+".filter", s.Filter)
		}
	}

	if g := a.Gateway; g != nil {
		for _, name := range sortedKeys(g.Models) {
			if s := g.Models[name].Schema; s != nil {
				c.schema(joinPath("gateway.models", name)+".schema", "gateway/models/"+name, s)
			}
		}
		for i, route := range g.Routes {
			path := indexPath("gateway.routes", i)
			if route.Request != nil {
				c.jq(path+".request.transform", route.Request.Transform, "$request")
			}
			if resp := route.Response; resp != nil {
				c.jq(path+".response.transform", resp.Transform)
				for j, sc := range resp.StatusCodes {
					c.regexp(indexPath(path+".response.statusCodes", j)+".pattern", sc.Pattern)
				}
			}
		}
	}

	o := &a.Observability
	for i, p := range o.Logs.Parsers {
		path := indexPath("observability.logs.parsers", i) + ".pattern"
		if re := c.regexp(path, p.Pattern); re != nil && !hasNamedGroup(re) {
			r.warnf(path, "the pattern has no named group, so parsed lines get no fields: name groups with (?P<name>...)")
		}
	}
	for i, f := range o.Logs.Filters {
		c.jq(indexPath("observability.logs.filters", i)+".condition", f.Condition)
	}
	c.alerts("observability.alerts", o.Alerts)
	for _, name := range sortedKeys(o.Dashboards) {
		c.dashboard(joinPath("observability.dashboards", name), o.Dashboards[name])
	}
	for _, name := range sortedKeys(o.SLOs) {
		for i, ind := range o.SLOs[name].Indicators {
			path := indexPath(joinPath("observability.slos", name)+".indicators", i)
			c.sloExpr(path+".errors", ind.Errors)
			c.sloExpr(path+".total", ind.Total)
		}
	}
}

// exprChecker holds what the checks share: the report, a PromQL parser and
// the stub functions of alert templates.
type exprChecker struct {
	r         *report
	prom      parser.Parser
	tmplFuncs template.FuncMap
}

// cron checks a schedule the way the engine reads it: robfig/cron's standard
// parser, five fields or a descriptor.
func (c *exprChecker) cron(path, expr string) {
	if msg := cronProblem(expr); msg != "" {
		c.r.errorf(path, "invalid cron expression %q: %s", expr, msg)
		return
	}
	if d, ok := everyDuration(expr); ok && d%time.Second != 0 {
		c.r.warnf(path, "cron runs on whole seconds: %q fires every %s", expr, d.Truncate(time.Second))
	}
}

// cronProblem returns what is wrong with a cron expression, or "".
func cronProblem(expr string) (msg string) {
	spec := strings.TrimSpace(expr)
	if spec == "" {
		return "it is empty: write 5 fields (minute hour day-of-month month day-of-week), a descriptor such as @daily, or @every DURATION"
	}
	if strings.HasPrefix(spec, "TZ=") || strings.HasPrefix(spec, "CRON_TZ=") {
		// robfig/cron slices past the time zone without checking that a
		// schedule follows it, and panics when none does.
		tz, rest, found := strings.Cut(spec, " ")
		if !found || strings.TrimSpace(rest) == "" {
			return fmt.Sprintf("%s is followed by no schedule", tz)
		}
		spec = strings.TrimSpace(rest)
	}
	if rest, ok := strings.CutPrefix(spec, "@every"); ok {
		arg := strings.TrimSpace(rest)
		if arg == "" {
			return "@every needs a duration, e.g. @every 5m"
		}
		d, err := time.ParseDuration(arg)
		switch {
		case err != nil:
			return fmt.Sprintf("@every takes a duration such as 30s, 5m or 1h, not %q", arg)
		case d <= 0:
			return fmt.Sprintf("@every needs a positive duration, not %s", arg)
		case d < time.Second:
			return fmt.Sprintf("@every %s is shorter than a second, the shortest interval cron runs", arg)
		}
	}
	if !strings.HasPrefix(spec, "@") {
		if n := len(strings.Fields(spec)); n == 6 {
			return "nubo takes 5 fields (minute hour day-of-month month day-of-week); a 6th field for seconds is not supported"
		} else if n != 5 {
			return fmt.Sprintf("nubo takes 5 fields (minute hour day-of-month month day-of-week), not %d", n)
		}
	}
	defer func() {
		if p := recover(); p != nil {
			msg = fmt.Sprintf("the cron parser failed: %v", p)
		}
	}()
	if _, err := cron.ParseStandard(expr); err != nil {
		return err.Error()
	}
	return ""
}

// everyDuration returns the interval of an @every schedule.
func everyDuration(expr string) (time.Duration, bool) {
	spec := strings.TrimSpace(expr)
	if strings.HasPrefix(spec, "TZ=") || strings.HasPrefix(spec, "CRON_TZ=") {
		_, spec, _ = strings.Cut(spec, " ")
	}
	rest, ok := strings.CutPrefix(strings.TrimSpace(spec), "@every")
	if !ok {
		return 0, false
	}
	d, err := time.ParseDuration(strings.TrimSpace(rest))
	return d, err == nil
}

// jq compiles a jq program, declaring the given variables (e.g. $request).
func (c *exprChecker) jq(path, expr string, vars ...string) {
	if expr == "" {
		return
	}
	if msg := jqProblem(expr, vars...); msg != "" {
		c.r.errorf(path, "%s", msg)
	}
}

func jqProblem(expr string, vars ...string) string {
	q, err := gojq.Parse(expr)
	if err != nil {
		var pe *gojq.ParseError
		if errors.As(err, &pe) {
			off := max(pe.Offset-len(pe.Token), 0)
			return fmt.Sprintf("invalid jq at %s: %s", position(expr, off), pe.Error())
		}
		return "invalid jq: " + err.Error()
	}
	var opts []gojq.CompilerOption
	if len(vars) > 0 {
		opts = append(opts, gojq.WithVariables(vars))
	}
	if _, err := gojq.Compile(q, opts...); err != nil {
		return "invalid jq: " + err.Error()
	}
	return ""
}

// regexp compiles a Go regular expression; nil when it does not compile.
func (c *exprChecker) regexp(path, pattern string) *regexp.Regexp {
	re, err := regexp.Compile(pattern)
	if err != nil {
		c.r.errorf(path, "invalid regular expression: %s", strings.TrimPrefix(err.Error(), "error parsing regexp: "))
		return nil
	}
	return re
}

func hasNamedGroup(re *regexp.Regexp) bool {
	for _, n := range re.SubexpNames() {
		if n != "" {
			return true
		}
	}
	return false
}

// alerts checks the PromQL and the templated labels and annotations of alert rules.
func (c *exprChecker) alerts(path string, rules []*AlertRule) {
	for i, a := range rules {
		p := indexPath(path, i)
		c.promql(p+".expr", a.Expr)
		for _, k := range sortedKeys(a.Labels) {
			c.alertTemplate(joinPath(p+".labels", k), a.Labels[k])
		}
		for _, k := range sortedKeys(a.Annotations) {
			c.alertTemplate(joinPath(p+".annotations", k), a.Annotations[k])
		}
	}
}

// alertTemplateDefs are the variables Prometheus defines before expanding an
// alert's labels and annotations (rules/alerting.go), kept on the first line
// so that line numbers in errors stay the user's.
const alertTemplateDefs = "{{$labels := .Labels}}{{$externalLabels := .ExternalLabels}}{{$externalURL := .ExternalURL}}{{$value := .Value}}"

// alertTemplate parses a label or annotation value as Prometheus will expand it.
func (c *exprChecker) alertTemplate(path, text string) {
	if !strings.Contains(text, "{{") {
		return
	}
	_, err := template.New("alert").Option("missingkey=zero").Funcs(c.tmplFuncs).Parse(alertTemplateDefs + text)
	if err != nil {
		msg := err.Error()
		// "template: alert:1: function "x" not defined" -> line 1: function ...
		if rest, ok := strings.CutPrefix(msg, "template: alert:"); ok {
			msg = "line " + rest
		}
		c.r.errorf(path, "invalid template: %s", msg)
	}
}

// alertTemplateFuncs stubs the functions Prometheus adds to alert templates
// (template/template.go, documented under "Template reference"): parsing only
// needs their names.
func alertTemplateFuncs() template.FuncMap {
	stub := func(...any) any { return nil }
	fm := template.FuncMap{}
	for _, name := range []string{
		// queries
		"query", "first", "label", "value", "strvalue", "sortByLabel",
		// numbers and time
		"humanize", "humanize1024", "humanizeDuration", "humanizePercentage",
		"humanizeTimestamp", "toTime", "toDuration", "now", "parseDuration",
		// strings
		"title", "toUpper", "toLower", "match", "reReplaceAll", "stripPort",
		"stripDomain", "graphLink", "tableLink", "urlQueryEscape", "safeHtml",
		// others
		"args", "tmpl", "pathPrefix", "externalURL",
	} {
		fm[name] = stub
	}
	return fm
}

// position renders a byte offset of a one- or multi-line expression as
// "column C" or "line L, column C", counted from 1 in characters.
func position(expr string, off int) string {
	off = min(max(off, 0), len(expr))
	before := expr[:off]
	line := strings.Count(before, "\n") + 1
	col := utf8.RuneCountInString(before[strings.LastIndex(before, "\n")+1:]) + 1
	if strings.Contains(expr, "\n") {
		return fmt.Sprintf("line %d, column %d", line, col)
	}
	return fmt.Sprintf("column %d", col)
}
