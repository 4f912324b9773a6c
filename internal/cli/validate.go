package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"regexp"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/nubo-dev/nubo/internal/engine"
	"github.com/nubo-dev/nubo/internal/parity"
	"github.com/nubo-dev/nubo/internal/spec"
	"github.com/spf13/cobra"
)

const validateLong = `Validate checks a spec file the way nubo up loads it: syntax, field names and
types, references between sections, expressions (cron, PromQL, jq, CESQL,
JSON Schema). Every problem is printed on stderr as FILE:LINE:COL: path: message,
followed by a count. A valid spec is summarized on stdout with the parity
table: for each feature the file uses, whether nubo up runs it locally,
emulates it, leaves it to Kubernetes, or does not do it yet.

Exit code 0 when the spec is valid (warnings allowed), 1 when it is not.

With --output json, stdout holds one JSON document, whatever the outcome:

  {
    "file": "nubo.yaml",
    "valid": true,
    "errors": 0,                 // number of diagnostics with severity "error"
    "warnings": 1,
    "diagnostics": [             // sorted by position; [] when none
      {"file": "nubo.yaml", "line": 12, "column": 5,    // 0 when unknown
       "path": "services.users.port", "message": "...",
       "severity": "error"}      // "error" or "warning"
    ],
    "counts": {"services": 3, ...},   // null when invalid
    "parity": [                  // [] when invalid
      {"pattern": "services.*.health.liveness", "feature": "liveness probe",
       "level": "not yet",       // "local", "emulated", "k8s-only" or "not yet"
       "note": "...", "count": 1, "first": "services.users.health.liveness"}
    ]
  }

Fields may be added to this document; none is renamed or removed.`

func newValidateCmd(std stdio, g *globals) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "validate",
		Short: "Check a spec file and show how nubo up runs each feature",
		Long:  validateLong,
		Args:  usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			res := validate(g.file)
			if output == "json" {
				enc := json.NewEncoder(std.out)
				enc.SetIndent("", "  ")
				if err := enc.Encode(res.document); err != nil {
					return err
				}
			} else {
				res.writeText(std.out, std.err)
			}
			if !res.document.Valid {
				return errReported
			}
			return nil
		},
	}
	outputFlag(cmd, &output)
	return cmd
}

// validateDocument is the JSON document of `nubo validate --output json`;
// validateLong documents it for users.
type validateDocument struct {
	File        string           `json:"file"`
	Valid       bool             `json:"valid"`
	Errors      int              `json:"errors"`
	Warnings    int              `json:"warnings"`
	Diagnostics []jsonDiagnostic `json:"diagnostics"`
	Counts      *counts          `json:"counts"`
	Parity      []parity.Row     `json:"parity"`
	// System are the rows of what nubo does for every system (audit,
	// backup, cost), which no field of the spec turns on.
	System []parity.Row `json:"system"`
}

// jsonDiagnostic is one diagnostic in the JSON document.
type jsonDiagnostic struct {
	File     string `json:"file"`
	Line     int    `json:"line"`
	Column   int    `json:"column"`
	Path     string `json:"path"`
	Message  string `json:"message"`
	Severity string `json:"severity"`
}

// counts are the sizes of a spec's sections, for the summary line.
type counts struct {
	Services      int `json:"services"`
	Functions     int `json:"functions"`
	Databases     int `json:"databases"`
	Queues        int `json:"queues"`
	Topics        int `json:"topics"`
	Rules         int `json:"rules"`
	Schedules     int `json:"schedules"`
	Events        int `json:"events"`
	Ingress       int `json:"ingress"`
	GatewayRoutes int `json:"gatewayRoutes"`
	Projections   int `json:"projections"`
	Alerts        int `json:"alerts"`
	Dashboards    int `json:"dashboards"`
	SLOs          int `json:"slos"`
}

// validation is the outcome of validating one file.
type validation struct {
	document validateDocument
	diags    spec.Diagnostics
	missing  bool // the file does not exist
}

// validate loads file as nubo up would and gathers everything both output
// formats say about it.
func validate(file string) validation {
	v := validation{document: validateDocument{File: file, Diagnostics: []jsonDiagnostic{}, Parity: []parity.Row{}}}
	// Stat first: a missing included file is a diagnostic, a missing spec is
	// a hint to run nubo init.
	if fi, err := os.Stat(file); errors.Is(err, fs.ErrNotExist) {
		v.missing = true
		v.diags = spec.Diagnostics{{Pos: spec.Pos{File: file}, Message: "no such file; run nubo init or pass -f FILE"}}
	} else if err == nil && fi.IsDir() {
		v.diags = spec.Diagnostics{{Pos: spec.Pos{File: file}, Message: "is a directory; pass -f FILE with the spec file"}}
	} else {
		app, err := spec.Load(file)
		var diags spec.Diagnostics
		switch {
		case errors.As(err, &diags):
			v.diags = diags
		case err != nil:
			v.diags = spec.Diagnostics{diagnosticOf(file, err)}
		default:
			v.diags = app.Warnings()
			if err := engine.Check(app); err != nil {
				// What nubo up would refuse when it builds its components.
				v.diags = append(v.diags, spec.Diagnostic{Pos: spec.Pos{File: file}, Message: "nubo up would refuse it: " + err.Error()})
				break
			}
			v.document.Valid = true
			v.document.Counts = countsOf(app)
			v.document.Parity = parity.Report(app)
			v.document.System = parity.System()
		}
	}
	for _, d := range v.diags {
		sev := "error"
		if d.Severity == spec.SeverityWarning {
			sev = "warning"
			v.document.Warnings++
		} else {
			v.document.Errors++
		}
		v.document.Diagnostics = append(v.document.Diagnostics, jsonDiagnostic{
			File: d.Pos.File, Line: d.Pos.Line, Column: d.Pos.Col, Path: d.Path, Message: d.Message, Severity: sev,
		})
	}
	return v
}

// positioned matches the FILE:LINE:COL: prefix spec puts on the errors that
// are not Diagnostics (YAML syntax, includes).
var positioned = regexp.MustCompile(`(?s)^(.+?):(\d+):(\d+): (.*)$`)

// diagnosticOf turns a load error that is not a Diagnostics into one, keeping
// its position when it starts with one.
func diagnosticOf(file string, err error) spec.Diagnostic {
	msg := err.Error()
	if m := positioned.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[2])
		col, _ := strconv.Atoi(m[3])
		return spec.Diagnostic{Pos: spec.Pos{File: m[1], Line: line, Col: col}, Message: m[4]}
	}
	var pathErr *fs.PathError
	if errors.As(err, &pathErr) && pathErr.Path == file {
		msg = pathErr.Err.Error() // the position already names the file
	} else {
		msg = strings.TrimPrefix(msg, file+": ")
	}
	return spec.Diagnostic{Pos: spec.Pos{File: file}, Message: msg}
}

// writeText prints the diagnostics and their count on stderr and, for a valid
// spec, the summary and the parity table on stdout.
func (v validation) writeText(stdout, stderr io.Writer) {
	if v.missing {
		fmt.Fprintln(stderr, v.diags[0].String())
		return
	}
	for _, d := range v.diags {
		fmt.Fprintln(stderr, d.String())
	}
	if len(v.diags) > 0 {
		fmt.Fprintf(stderr, "%s, %s\n", plural(v.document.Errors, "error"), plural(v.document.Warnings, "warning"))
	}
	if !v.document.Valid {
		return
	}
	fmt.Fprintf(stdout, "%s: valid (%s)\n\n", v.document.File, v.document.Counts.summary())
	writeParityTable(stdout, v.document.Parity)
	fmt.Fprintln(stdout, "\nFor every system:")
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	for _, r := range v.document.System {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", r.Feature, r.Level, r.Pattern, r.Note)
	}
	tw.Flush()
}

// writeParityTable prints the rows as FEATURE, LEVEL, HOW, then a line
// counting the rows of each level.
func writeParityTable(w io.Writer, rows []parity.Row) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "FEATURE\tLEVEL\tHOW")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", r.Feature, r.Level, r.Note)
	}
	tw.Flush()
	n := parity.Count(rows)
	parts := make([]string, 0, len(parity.Levels()))
	for _, l := range parity.Levels() {
		parts = append(parts, fmt.Sprintf("%d %s", n[l], l))
	}
	fmt.Fprintf(w, "\n%s: %s\n", plural(len(rows), "feature"), strings.Join(parts, ", "))
}

func countsOf(a *spec.App) *counts {
	c := &counts{
		Services:   len(a.Services),
		Functions:  len(a.Functions),
		Databases:  len(a.Databases),
		Queues:     len(a.Queues),
		Topics:     len(a.Topics),
		Rules:      len(a.Rules),
		Schedules:  len(a.Schedules),
		Events:     len(a.Events),
		Ingress:    len(a.Ingress),
		Alerts:     len(a.Observability.Alerts),
		Dashboards: len(a.Observability.Dashboards),
		SLOs:       len(a.Observability.SLOs),
	}
	if a.Gateway != nil {
		c.GatewayRoutes = len(a.Gateway.Routes)
	}
	if a.EventStore != nil {
		c.Projections = len(a.EventStore.Projections)
	}
	return c
}

// summary lists the counts for the `valid (...)` line: services and functions
// always, the other sections when the spec has them.
func (c *counts) summary() string {
	parts := []string{plural(c.Services, "service"), plural(c.Functions, "function")}
	for _, o := range []struct {
		n    int
		what string
	}{
		{c.Databases, "database"},
		{c.Queues, "queue"},
		{c.Topics, "topic"},
		{c.Rules, "rule"},
		{c.Schedules, "schedule"},
		{c.Events, "event type"},
		{c.Ingress, "ingress"},
		{c.GatewayRoutes, "gateway route"},
		{c.Projections, "projection"},
		{c.Alerts, "alert"},
		{c.Dashboards, "dashboard"},
		{c.SLOs, "SLO"},
	} {
		if o.n > 0 {
			parts = append(parts, plural(o.n, o.what))
		}
	}
	return strings.Join(parts, ", ")
}

// plural writes "1 error", "3 errors", "2 ingresses".
func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	if strings.HasSuffix(what, "s") {
		return fmt.Sprintf("%d %ses", n, what)
	}
	return fmt.Sprintf("%d %ss", n, what)
}
