package spec

import (
	"fmt"
	"sort"
	"strings"
)

// Severity says whether a diagnostic fails validation.
type Severity int

const (
	// SeverityError fails `nubo validate` and stops `nubo up`.
	SeverityError Severity = iota
	// SeverityWarning is shown but fails nothing.
	SeverityWarning
)

// Diagnostic is one problem found in a spec, with its place.
type Diagnostic struct {
	Pos      Pos
	Path     string // field path, e.g. services.users.health.liveness.period
	Message  string
	Severity Severity
}

// String renders FILE:LINE:COL: path: message, with "warning: " before the
// message of a warning.
func (d Diagnostic) String() string {
	var b strings.Builder
	b.WriteString(d.Pos.String())
	b.WriteString(": ")
	if d.Path != "" {
		b.WriteString(d.Path)
		b.WriteString(": ")
	}
	if d.Severity == SeverityWarning {
		b.WriteString("warning: ")
	}
	b.WriteString(d.Message)
	return b.String()
}

// Diagnostics is a list of problems; as an error it holds only errors.
type Diagnostics []Diagnostic

// Error joins the diagnostics one a line.
func (ds Diagnostics) Error() string {
	lines := make([]string, len(ds))
	for i, d := range ds {
		lines[i] = d.String()
	}
	return strings.Join(lines, "\n")
}

// Errors returns the diagnostics that are errors.
func (ds Diagnostics) Errors() Diagnostics { return ds.filter(SeverityError) }

// Warnings returns the diagnostics that are warnings.
func (ds Diagnostics) Warnings() Diagnostics { return ds.filter(SeverityWarning) }

func (ds Diagnostics) filter(s Severity) Diagnostics {
	var out Diagnostics
	for _, d := range ds {
		if d.Severity == s {
			out = append(out, d)
		}
	}
	return out
}

// sortDiagnostics orders by file (in load order), line, column, then message,
// so that output is stable and reads top to bottom.
func sortDiagnostics(ds Diagnostics, files []string) {
	rank := map[string]int{}
	for i, f := range files {
		rank[f] = i
	}
	sort.SliceStable(ds, func(i, j int) bool {
		a, b := ds[i].Pos, ds[j].Pos
		if a.File != b.File {
			ra, oka := rank[a.File]
			rb, okb := rank[b.File]
			if oka && okb {
				return ra < rb
			}
			return a.File < b.File
		}
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		if a.Col != b.Col {
			return a.Col < b.Col
		}
		return ds[i].Message < ds[j].Message
	})
}

// source remembers where every field path was written.
type source struct {
	files  []string       // the main file first, then included files in load order
	pos    map[string]Pos // field path -> position of its value
	keyPos map[string]Pos // field path -> position of its key
	// interpolations lists every string value containing "${", for the
	// reference checks.
	interpolations []stringValue
}

type stringValue struct {
	path  string
	value string
}

func newSource() *source {
	return &source{pos: map[string]Pos{}, keyPos: map[string]Pos{}}
}

// at returns the best known position for path: its value, else its key, else
// the nearest parent's.
func (s *source) at(path string) Pos {
	for p := path; ; p = parentPath(p) {
		if pos, ok := s.pos[p]; ok && pos.Line > 0 {
			return pos
		}
		if pos, ok := s.keyPos[p]; ok {
			return pos
		}
		if p == "" {
			break
		}
	}
	if len(s.files) > 0 {
		return Pos{File: s.files[0]}
	}
	return Pos{}
}

// atKey returns the position of path's key, or at(path) when it has none.
func (s *source) atKey(path string) Pos {
	if pos, ok := s.keyPos[path]; ok {
		return pos
	}
	return s.at(path)
}

// parentPath strips the last element of a field path: a.b[2] -> a.b, a.b -> a,
// a["x.y"] -> a.
func parentPath(p string) string {
	if strings.HasSuffix(p, "]") {
		if i := strings.LastIndex(p, "["); i >= 0 {
			return p[:i]
		}
	}
	if i := strings.LastIndex(p, "."); i >= 0 {
		return p[:i]
	}
	return ""
}

// joinPath appends a map key to a field path, quoting keys that contain
// characters a path uses itself.
func joinPath(parent, key string) string {
	if strings.ContainsAny(key, ".[]\" ") || key == "" {
		key = fmt.Sprintf("[%q]", key)
		return parent + key
	}
	if parent == "" {
		return key
	}
	return parent + "." + key
}

// indexPath appends a list index to a field path.
func indexPath(parent string, i int) string { return fmt.Sprintf("%s[%d]", parent, i) }

// report collects the diagnostics of the validators, placing each by its path.
type report struct {
	src   *source
	diags Diagnostics
}

// errorf records an error at the value of path.
func (r *report) errorf(path, format string, args ...any) {
	r.add(r.src.at(path), path, SeverityError, format, args...)
}

// keyErrorf records an error at the key of path, for problems with a name.
func (r *report) keyErrorf(path, format string, args ...any) {
	r.add(r.src.atKey(path), path, SeverityError, format, args...)
}

// warnf records a warning at the value of path.
func (r *report) warnf(path, format string, args ...any) {
	r.add(r.src.at(path), path, SeverityWarning, format, args...)
}

func (r *report) add(pos Pos, path string, sev Severity, format string, args ...any) {
	r.diags = append(r.diags, Diagnostic{Pos: pos, Path: path, Message: fmt.Sprintf(format, args...), Severity: sev})
}

// unknown records an error for a reference to a name that does not exist,
// with a did-you-mean hint when a known name is close.
func (r *report) unknown(path, what, name string, known []string) {
	msg := fmt.Sprintf("unknown %s %q", what, name)
	if s := Suggest(name, known); s != "" {
		msg += fmt.Sprintf(" (did you mean %q?)", s)
	} else if len(known) == 0 {
		msg += fmt.Sprintf(" (no %s is declared)", what)
	}
	r.errorf(path, "%s", msg)
}

// fatalf is a problem that stops loading (bad YAML, a missing include): it is
// still a Diagnostics, so callers print it like every other spec error.
func fatalf(pos Pos, format string, args ...any) error {
	return Diagnostics{{Pos: pos, Message: fmt.Sprintf(format, args...), Severity: SeverityError}}
}
