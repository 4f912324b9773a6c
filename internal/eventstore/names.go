package eventstore

import (
	"fmt"
	"strings"
)

// names gives the JetStream names of one app's event store; the app's name
// prefixes each, so that several apps can share one NATS cluster. They are
// the names internal/k8s renders for the JetStream controller.
type names struct{ app string }

func (n names) stream() string               { return n.app + "-eventstore" }
func (n names) subjectPrefix() string        { return n.app + ".eventstore." }
func (n names) subject(stream string) string { return n.subjectPrefix() + stream }
func (n names) allSubjects() string          { return n.subjectPrefix() + ">" }
func (n names) checkpoints() string          { return n.app + "-eventstore-checkpoints" }
func (n names) snapshots() string            { return n.app + "-eventstore-snapshots" }

// streamName returns the stream name of one of the store's subjects.
func (n names) streamName(subject string) string {
	return strings.TrimPrefix(subject, n.subjectPrefix())
}

// maxStreamName bounds a stream name: it is a subject token and part of
// every message id.
const maxStreamName = 200

// validStreamName reports whether s is what a stream name may hold: one
// NATS subject token (no '.', '*', '>' or space), in the characters ids
// are made of: [A-Za-z0-9_][A-Za-z0-9_@:=+-]*. A loop, not a regexp: it
// runs on every append.
func validStreamName(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '_':
		case i > 0 && (c == '@' || c == ':' || c == '=' || c == '+' || c == '-'):
		default:
			return false
		}
	}
	return s != ""
}

// checkStreamName refuses names that are not one subject token.
func checkStreamName(s string) error {
	if s == "" {
		return fmt.Errorf("stream name is empty")
	}
	if len(s) > maxStreamName {
		return fmt.Errorf("stream %.20q...: name longer than %d characters", s, maxStreamName)
	}
	if !validStreamName(s) {
		return fmt.Errorf("stream %q: a name is letters, digits and _ @ : = + - (no '.', '*', '>' or spaces)", s)
	}
	return nil
}

// glob is a stream pattern: '*' matches any run of characters, the rest
// itself. Empty and "*" match every stream.
type glob string

func (g glob) all() bool { return g == "" || g == "*" }

// exact reports whether the pattern names one stream.
func (g glob) exact() bool { return !strings.Contains(string(g), "*") && g != "" }

func (g glob) match(s string) bool {
	if g.all() {
		return true
	}
	p := string(g)
	parts := strings.Split(p, "*")
	if len(parts) == 1 {
		return p == s
	}
	if !strings.HasPrefix(s, parts[0]) {
		return false
	}
	s = s[len(parts[0]):]
	last := parts[len(parts)-1]
	for _, mid := range parts[1 : len(parts)-1] {
		i := strings.Index(s, mid)
		if i < 0 {
			return false
		}
		s = s[i+len(mid):]
	}
	return strings.HasSuffix(s, last)
}

// filter selects events by stream pattern and types.
type filter struct {
	streams glob
	types   map[string]bool // nil: all
}

func newFilter(streams string, types []string) filter {
	f := filter{streams: glob(streams)}
	for _, t := range types {
		if t == "" {
			continue
		}
		if f.types == nil {
			f.types = map[string]bool{}
		}
		f.types[t] = true
	}
	return f
}

func (f filter) matchStream(s string) bool { return f.streams.match(s) }
func (f filter) matchType(t string) bool   { return f.types == nil || f.types[t] }

// subject is the narrowest JetStream subject filter for f.
func (f filter) subject(n names) string {
	if f.streams.exact() {
		return n.subject(string(f.streams))
	}
	return n.allSubjects()
}
