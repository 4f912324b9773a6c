package events

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	cesql "github.com/cloudevents/sdk-go/sql/v2"
	cesqlparser "github.com/cloudevents/sdk-go/sql/v2/parser"
	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/cloudevents/sdk-go/v2/types"
	"github.com/itchyny/gojq"

	"github.com/nubo-dev/nubo/internal/spec"
)

// jqTimeout bounds one jq filter or transform: a program such as
// repeat(.) must not hold a delivery forever.
const jqTimeout = time.Second

// matcher is a compiled filter. It reports whether ev matches; an error
// means the filter could not be evaluated (a jq error), which no retry
// will change.
type matcher func(ctx context.Context, ev *eventDoc) (bool, error)

// eventDoc is an event with its JSON form computed once, on demand, for
// the jq filters and the transform that read it.
type eventDoc struct {
	ev  *event.Event
	doc any
	err error
	set bool
}

// json returns the event in the CloudEvents JSON format, decoded: data as
// JSON when the content type is JSON, else a string or data_base64.
func (d *eventDoc) json() (any, error) {
	if d.set {
		return d.doc, d.err
	}
	d.set = true
	raw, err := json.Marshal(d.ev)
	if err != nil {
		d.err = fmt.Errorf("event %q as JSON: %w", d.ev.ID(), err)
		return nil, d.err
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	d.err = dec.Decode(&d.doc)
	return d.doc, d.err
}

// compileFilter compiles a subscription filter. The set dialects must all
// hold. The spec validator has checked the filter; errors here are for a
// spec built without it.
func compileFilter(f *spec.Filter) (matcher, error) {
	if f == nil {
		return nil, nil
	}
	var parts []matcher
	for _, d := range []struct {
		attrs map[string]string
		ok    func(v, want string) bool
	}{
		{f.Exact, func(v, want string) bool { return v == want }},
		{f.Prefix, strings.HasPrefix},
		{f.Suffix, strings.HasSuffix},
	} {
		for name, want := range d.attrs {
			name, want, ok := strings.ToLower(name), want, d.ok
			parts = append(parts, func(_ context.Context, e *eventDoc) (bool, error) {
				v, present := attribute(e.ev, name)
				return present && ok(v, want), nil
			})
		}
	}
	if f.All != nil {
		subs, err := compileFilters(f.All)
		if err != nil {
			return nil, fmt.Errorf("all: %w", err)
		}
		parts = append(parts, func(ctx context.Context, e *eventDoc) (bool, error) {
			for _, m := range subs {
				if ok, err := m(ctx, e); !ok || err != nil {
					return false, err
				}
			}
			return true, nil
		})
	}
	if f.Any != nil {
		subs, err := compileFilters(f.Any)
		if err != nil {
			return nil, fmt.Errorf("any: %w", err)
		}
		parts = append(parts, func(ctx context.Context, e *eventDoc) (bool, error) {
			for _, m := range subs {
				if ok, err := m(ctx, e); ok || err != nil {
					return ok, err
				}
			}
			return false, nil
		})
	}
	if f.Not != nil {
		sub, err := compileFilter(f.Not)
		if err != nil {
			return nil, fmt.Errorf("not: %w", err)
		}
		parts = append(parts, func(ctx context.Context, e *eventDoc) (bool, error) {
			ok, err := sub(ctx, e)
			return !ok, err
		})
	}
	if f.SQL != "" {
		expr, err := parseCESQL(f.SQL)
		if err != nil {
			return nil, err
		}
		parts = append(parts, func(_ context.Context, e *eventDoc) (bool, error) {
			return evalCESQL(expr, e.ev), nil
		})
	}
	if f.JQ != "" {
		code, err := compileJQ(f.JQ)
		if err != nil {
			return nil, fmt.Errorf("jq: %w", err)
		}
		parts = append(parts, func(ctx context.Context, e *eventDoc) (bool, error) {
			v, found, err := runJQ(ctx, code, e)
			if err != nil {
				return false, fmt.Errorf("filter jq %q: %w", f.JQ, err)
			}
			return found && v != nil && v != false, nil
		})
	}
	if len(parts) == 0 {
		return nil, fmt.Errorf("empty filter: set exact, prefix, suffix, all, any, not, sql or jq")
	}
	if len(parts) == 1 {
		return parts[0], nil
	}
	return func(ctx context.Context, e *eventDoc) (bool, error) {
		for _, m := range parts {
			if ok, err := m(ctx, e); !ok || err != nil {
				return false, err
			}
		}
		return true, nil
	}, nil
}

func compileFilters(fs []*spec.Filter) ([]matcher, error) {
	if len(fs) == 0 {
		return nil, fmt.Errorf("needs at least one filter")
	}
	out := make([]matcher, len(fs))
	for i, f := range fs {
		m, err := compileFilter(f)
		if err != nil {
			return nil, fmt.Errorf("[%d]: %w", i, err)
		}
		out[i] = m
	}
	return out, nil
}

// attribute returns an attribute's value in its canonical string form, as
// the CloudEvents filter dialects compare it, and whether the event has it.
func attribute(ev *event.Event, name string) (string, bool) {
	var v string
	switch name {
	case "specversion":
		v = ev.SpecVersion()
	case "id":
		v = ev.ID()
	case "source":
		v = ev.Source()
	case "type":
		v = ev.Type()
	case "subject":
		v = ev.Subject()
	case "datacontenttype":
		v = ev.DataContentType()
	case "dataschema":
		v = ev.DataSchema()
	case "time":
		if t := ev.Time(); !t.IsZero() {
			v = t.UTC().Format(time.RFC3339Nano)
		}
	default:
		ext, ok := ev.Extensions()[name]
		if !ok {
			return "", false
		}
		s, err := types.Format(ext)
		return s, err == nil
	}
	return v, v != ""
}

// parseCESQL parses a CESQL expression. The sdk's parser panics on some
// incomplete input and returns empty messages; the spec validator reports
// those with positions, so here a short message is enough.
func parseCESQL(src string) (expr cesql.Expression, err error) {
	defer func() {
		if p := recover(); p != nil {
			expr, err = nil, fmt.Errorf("sql %q: the CESQL parser failed (%v)", src, p)
		}
	}()
	expr, err = cesqlparser.Parse(src)
	if err != nil {
		msg := strings.TrimSpace(err.Error())
		if msg == "" {
			msg = "invalid expression"
		}
		return nil, fmt.Errorf("sql %q: %s", src, msg)
	}
	return expr, nil
}

// evalCESQL evaluates a CESQL expression. CESQL says an evaluation error
// (a missing attribute, a failed cast) makes the expression false, and a
// non-boolean result is cast to boolean.
func evalCESQL(expr cesql.Expression, ev *event.Event) (ok bool) {
	defer func() {
		if recover() != nil {
			ok = false
		}
	}()
	v, err := expr.Evaluate(*ev)
	if err != nil {
		return false
	}
	switch v := v.(type) {
	case bool:
		return v
	case string:
		return strings.EqualFold(v, "true")
	case int32:
		return v != 0
	}
	return false
}

// compileJQ compiles a jq program for a filter or a transform. $ENV and
// env read nothing: nubo's environment holds secrets, and a spec's jq must
// not copy them into events.
func compileJQ(src string) (*gojq.Code, error) {
	q, err := gojq.Parse(src)
	if err != nil {
		return nil, fmt.Errorf("%q: %w", src, err)
	}
	code, err := gojq.Compile(q, gojq.WithEnvironLoader(func() []string { return nil }))
	if err != nil {
		return nil, fmt.Errorf("%q: %w", src, err)
	}
	return code, nil
}

// runJQ returns the first output of code on the event's JSON form, and
// whether there was one.
func runJQ(ctx context.Context, code *gojq.Code, e *eventDoc) (any, bool, error) {
	doc, err := e.json()
	if err != nil {
		return nil, false, err
	}
	ctx, cancel := context.WithTimeout(ctx, jqTimeout)
	defer cancel()
	iter := code.RunWithContext(ctx, doc)
	v, ok := iter.Next()
	if !ok {
		return nil, false, nil
	}
	if err, isErr := v.(error); isErr {
		return nil, false, err
	}
	return v, true, nil
}

// transformer is a compiled rule transform: its first output becomes the
// event's data (application/json). No output drops the event.
type transformer struct {
	src  string
	code *gojq.Code
}

func compileTransform(src string) (*transformer, error) {
	if src == "" {
		return nil, nil
	}
	code, err := compileJQ(src)
	if err != nil {
		return nil, fmt.Errorf("transform: %w", err)
	}
	return &transformer{src: src, code: code}, nil
}

// apply returns a copy of the event with the transform's output as data,
// or nil when the transform gave no output.
func (t *transformer) apply(ctx context.Context, e *eventDoc) (*event.Event, error) {
	v, found, err := runJQ(ctx, t.code, e)
	if err != nil {
		return nil, fmt.Errorf("transform %q: %w", t.src, err)
	}
	if !found {
		return nil, nil
	}
	data, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("transform %q: output as JSON: %w", t.src, err)
	}
	out := e.ev.Clone()
	out.SetDataContentType(event.ApplicationJSON)
	out.DataEncoded = data
	out.DataBase64 = false
	return &out, nil
}
