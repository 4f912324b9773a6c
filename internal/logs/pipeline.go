package logs

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/itchyny/gojq"

	"github.com/nubo-dev/nubo/internal/spec"
)

// A Pipeline turns a line into a record and decides whether it is kept:
//
//  1. Parse. A JSON object line gives its fields; the level comes from
//     level, lvl or severity, the trace from trace_id, traceId or traceID.
//     Other lines are tried against the spec's parsers for their service
//     (observability.logs.parsers, first match wins; named groups become
//     fields), then as logfmt (key=value pairs).
//  2. Filter. observability.logs.filters, in order, each a jq condition
//     over the record: the fields at the top level beside service, replica,
//     stream, level and message. drop removes a matching record; keep
//     removes every record that does not match; redact replaces the listed
//     fields (or, with none listed, the message) of a matching record.
//
// Dropped records are neither printed by nubo up nor stored.
type Pipeline struct {
	parsers []parser
	filters []filter
}

type parser struct {
	name     string
	services []string
	re       *regexp.Regexp
}

type filter struct {
	name   string
	code   *gojq.Code
	action string
	fields []string
}

// jqTimeout bounds one filter on one record.
const jqTimeout = 50 * time.Millisecond

// Redacted replaces what a redact filter hides.
const Redacted = "[redacted]"

// NewPipeline compiles the spec's parsers and filters; an error names the
// parser or filter.
func NewPipeline(cfg spec.Logs) (*Pipeline, error) {
	p := &Pipeline{}
	for _, ps := range cfg.Parsers {
		re, err := regexp.Compile(ps.Pattern)
		if err != nil {
			return nil, fmt.Errorf("logs: parser %q: %w", ps.Name, err)
		}
		p.parsers = append(p.parsers, parser{name: ps.Name, services: ps.Services, re: re})
	}
	for _, fs := range cfg.Filters {
		q, err := gojq.Parse(fs.Condition)
		if err != nil {
			return nil, fmt.Errorf("logs: filter %q: condition %q: %w", fs.Name, fs.Condition, err)
		}
		code, err := gojq.Compile(q, gojq.WithEnvironLoader(func() []string { return nil }))
		if err != nil {
			return nil, fmt.Errorf("logs: filter %q: condition %q: %w", fs.Name, fs.Condition, err)
		}
		p.filters = append(p.filters, filter{name: fs.Name, code: code, action: fs.Action, fields: fs.Fields})
	}
	return p, nil
}

// Process parses l in place and reports whether it is kept. A nil
// Pipeline parses JSON and logfmt and keeps everything.
func (p *Pipeline) Process(l *Line) bool {
	kind := parse(p, l)
	if p == nil {
		return true
	}
	for _, f := range p.filters {
		match := f.matches(l)
		switch {
		case f.action == "drop" && match:
			return false
		case f.action == "keep" && !match:
			return false
		case f.action == "redact" && match:
			redact(l, kind, f.fields)
		}
	}
	return true
}

// The kinds of line parse recognises.
const (
	plainLine = iota
	jsonLine
	logfmtLine
	parsedLine // by a spec parser
)

func parse(p *Pipeline, l *Line) int {
	text := strings.TrimSpace(l.Text)
	if strings.HasPrefix(text, "{") {
		var fields map[string]any
		if json.Unmarshal([]byte(text), &fields) == nil {
			setFields(l, fields)
			return jsonLine
		}
	}
	if p != nil {
		for _, ps := range p.parsers {
			if len(ps.services) > 0 && !slices.Contains(ps.services, l.Service) {
				continue
			}
			m := ps.re.FindStringSubmatch(l.Text)
			if m == nil {
				continue
			}
			fields := map[string]any{}
			for i, name := range ps.re.SubexpNames() {
				if name != "" && i < len(m) {
					fields[name] = m[i]
				}
			}
			setFields(l, fields)
			return parsedLine
		}
	}
	if fields := logfmt(text); fields != nil {
		setFields(l, fields)
		return logfmtLine
	}
	return plainLine
}

// setFields keeps fields and takes the level and the trace id from them.
func setFields(l *Line, fields map[string]any) {
	if len(fields) == 0 {
		return
	}
	l.Fields = fields
	for _, k := range []string{"level", "lvl", "severity"} {
		if s, ok := fields[k].(string); ok && s != "" {
			l.Level = normalLevel(s)
			break
		}
	}
	for _, k := range []string{"trace_id", "traceId", "traceID"} {
		if s, ok := fields[k].(string); ok && s != "" {
			l.TraceID = s
			break
		}
	}
}

// normalLevel spells levels one way, so that --level error finds ERROR,
// err and fatal alike.
func normalLevel(s string) string {
	switch s = strings.ToLower(s); s {
	case "warning":
		return "warn"
	case "err", "fatal", "panic", "critical", "crit", "emerg", "alert":
		return "error"
	case "information", "notice":
		return "info"
	case "trace":
		return "debug"
	}
	return s
}

// logfmt parses key=value pairs (values may be quoted); a line that is not
// wholly made of at least two pairs is not logfmt.
func logfmt(s string) map[string]any {
	fields := map[string]any{}
	for s != "" {
		s = strings.TrimLeftFunc(s, unicode.IsSpace)
		if s == "" {
			break
		}
		eq := strings.IndexByte(s, '=')
		if eq <= 0 || strings.ContainsFunc(s[:eq], unicode.IsSpace) || strings.ContainsAny(s[:eq], `"`) {
			return nil
		}
		key := s[:eq]
		s = s[eq+1:]
		var val string
		if strings.HasPrefix(s, `"`) {
			end := 1
			for end < len(s) && (s[end] != '"' || s[end-1] == '\\') {
				end++
			}
			if end >= len(s) {
				return nil
			}
			val = strings.ReplaceAll(s[1:end], `\"`, `"`)
			s = s[end+1:]
		} else {
			end := strings.IndexFunc(s, unicode.IsSpace)
			if end < 0 {
				end = len(s)
			}
			val, s = s[:end], s[end:]
		}
		fields[key] = val
	}
	if len(fields) < 2 {
		return nil
	}
	return fields
}

// matches runs the filter's condition on the record; an error or a
// timeout is no match (a broken condition must not drop everything).
func (f filter) matches(l *Line) bool {
	doc := make(map[string]any, len(l.Fields)+6)
	for k, v := range l.Fields {
		doc[k] = v
	}
	doc["service"], doc["replica"], doc["stream"] = l.Service, l.Replica, l.Stream
	doc["level"], doc["message"] = l.Level, l.Text
	ctx, cancel := context.WithTimeout(context.Background(), jqTimeout)
	defer cancel()
	v, ok := f.code.RunWithContext(ctx, doc).Next()
	if !ok {
		return false
	}
	if _, isErr := v.(error); isErr {
		return false
	}
	return v != nil && v != false
}

// redact hides fields of l, or its whole text when fields is empty. The
// text is written again from the redacted fields (JSON stays JSON, logfmt
// logfmt): a value may be spelled differently in the text than in the
// field (JSON escapes, number formats), so searching the text for it could
// leave it there. A line a parser read has no other form: its text goes.
func redact(l *Line, kind int, fields []string) {
	if len(fields) == 0 {
		l.Text = Redacted
		l.Fields = nil
		return
	}
	hit := false
	for _, k := range fields {
		if _, ok := l.Fields[k]; ok {
			l.Fields[k] = Redacted
			hit = true
		}
	}
	if !hit {
		return
	}
	switch kind {
	case jsonLine:
		b, err := json.Marshal(l.Fields)
		if err != nil {
			l.Text = Redacted
			return
		}
		l.Text = string(b)
	case logfmtLine:
		keys := make([]string, 0, len(l.Fields))
		for k := range l.Fields {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		var b strings.Builder
		for i, k := range keys {
			if i > 0 {
				b.WriteByte(' ')
			}
			fmt.Fprintf(&b, "%s=%s", k, logfmtValue(fmt.Sprint(l.Fields[k])))
		}
		l.Text = b.String()
	default:
		l.Text = Redacted
	}
}

func logfmtValue(v string) string {
	if v == "" || strings.ContainsAny(v, " \"=") {
		return strconv.Quote(v)
	}
	return v
}
