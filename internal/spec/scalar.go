package spec

import (
	"fmt"
	"strings"
	"time"

	"github.com/prometheus/common/model"
	"k8s.io/apimachinery/pkg/api/resource"
)

// scalarDecoder is implemented by spec types written as one YAML scalar.
type scalarDecoder interface {
	decodeScalar(text string) error
}

// Duration is a length of time written as Go and Kubernetes write it (500ms, 30s,
// 1h30m), or with Prometheus' d, w and y units (30d), which SLO windows need.
type Duration struct {
	time.Duration
	// Text is the duration as written, kept for messages and rendering.
	Text string
}

func (d *Duration) decodeScalar(text string) error {
	v, err := ParseDuration(text)
	if err != nil {
		return err
	}
	d.Duration, d.Text = v, text
	return nil
}

// IsSet reports whether the duration was written in the spec or by a default.
func (d Duration) IsSet() bool { return d.Text != "" }

// String returns the duration as written, or Go's form when it was computed.
func (d Duration) String() string {
	if d.Text != "" {
		return d.Text
	}
	return d.Duration.String()
}

// Dur builds a Duration, as defaults and tests need.
func Dur(text string) Duration {
	var d Duration
	if err := d.decodeScalar(text); err != nil {
		panic(err) // only called with literals
	}
	return d
}

// ParseDuration parses 500ms, 30s, 1h30m, 30d or 2w. Negative durations are
// refused: no field of the spec means anything by them.
func ParseDuration(text string) (time.Duration, error) {
	s := strings.TrimSpace(text)
	if s == "" {
		return 0, fmt.Errorf("empty duration: write e.g. 30s, 5m, 1h or 30d")
	}
	if s == "0" {
		return 0, nil
	}
	if v, err := time.ParseDuration(s); err == nil {
		if v < 0 {
			return 0, fmt.Errorf("duration %q is negative", text)
		}
		return v, nil
	}
	if v, err := model.ParseDuration(s); err == nil {
		return time.Duration(v), nil
	}
	return 0, fmt.Errorf("invalid duration %q: write e.g. 500ms, 30s, 5m, 1h30m or 30d", text)
}

// Quantity is a Kubernetes resource quantity: 500m or 2 (CPU), 512Mi or 10Gi (bytes).
type Quantity struct {
	resource.Quantity
	// Text is the quantity as written.
	Text string
}

func (q *Quantity) decodeScalar(text string) error {
	v, err := resource.ParseQuantity(strings.TrimSpace(text))
	if err != nil {
		return fmt.Errorf("invalid quantity %q: write e.g. 500m, 2, 512Mi or 10Gi", text)
	}
	if v.Sign() < 0 {
		return fmt.Errorf("quantity %q is negative", text)
	}
	q.Quantity, q.Text = v, text
	return nil
}

// IsSet reports whether the quantity was given.
func (q Quantity) IsSet() bool { return q.Text != "" }

// String returns the quantity as written.
func (q Quantity) String() string { return q.Text }

// TargetKind is what a target points at.
type TargetKind string

// The kinds of target; the string is the prefix written in the spec.
const (
	TargetFunction TargetKind = "function"
	TargetService  TargetKind = "service"
	TargetQueue    TargetKind = "queue"
	TargetTopic    TargetKind = "topic"
	TargetDatabase TargetKind = "database"
	TargetHTTP     TargetKind = "http"
)

// Target is where an event, schedule, subscription or handler goes:
// function:NAME, service:NAME/path, queue:NAME, topic:NAME or http(s)://host/path.
type Target struct {
	Kind TargetKind
	// Name of the function, service, queue or topic.
	Name string
	// Path on a service, with its leading slash.
	Path string
	// URL of an http target.
	URL string
	// Text is the target as written.
	Text string
}

func (t *Target) decodeScalar(text string) error {
	v, err := ParseTarget(text)
	if err != nil {
		return err
	}
	*t = v
	return nil
}

// String returns the target as written.
func (t Target) String() string { return t.Text }

// IsSet reports whether the target was given.
func (t Target) IsSet() bool { return t.Text != "" }

// ParseTarget parses a target. It checks the form only; that the name exists is
// the validators' job.
func ParseTarget(text string) (Target, error) {
	t := Target{Text: text}
	if strings.HasPrefix(text, "http://") || strings.HasPrefix(text, "https://") {
		t.Kind, t.URL = TargetHTTP, text
		if len(text) <= len("https://") || strings.ContainsAny(text, " \t\n") {
			return t, fmt.Errorf("invalid URL %q", text)
		}
		return t, nil
	}
	kind, rest, ok := strings.Cut(text, ":")
	if !ok || rest == "" {
		return t, fmt.Errorf("invalid target %q: write function:NAME, service:NAME/path, queue:NAME, topic:NAME or an http(s):// URL", text)
	}
	t.Kind = TargetKind(kind)
	switch t.Kind {
	case TargetService:
		name, path, hasPath := strings.Cut(rest, "/")
		t.Name = name
		if hasPath {
			t.Path = "/" + path
		}
	case TargetFunction, TargetQueue, TargetTopic, TargetDatabase:
		t.Name = rest
	default:
		msg := fmt.Sprintf("unknown target kind %q: write function:, service:, queue:, topic: or an http(s):// URL", kind)
		if s := Suggest(kind, []string{"function", "service", "queue", "topic", "http", "https"}); s != "" {
			msg += fmt.Sprintf(" (did you mean %q?)", s)
		}
		return t, fmt.Errorf("%s", msg)
	}
	if !isDNSLabel(t.Name) {
		return t, fmt.Errorf("invalid target %q: %q is not a valid name (lowercase letters, digits and '-')", text, t.Name)
	}
	return t, nil
}
