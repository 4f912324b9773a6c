package spec

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

const referenceFile = "testdata/nubo.reference.yaml"

func TestReferenceLoads(t *testing.T) {
	app, err := Load(referenceFile)
	if err != nil {
		t.Fatalf("the reference must load without errors:\n%v", err)
	}
	if app.Name != "shop" || len(app.Services) != 3 || app.Gateway == nil || app.EventStore == nil {
		t.Errorf("reference decoded wrongly: name %q, %d services", app.Name, len(app.Services))
	}
	users := app.Services["users"]
	if got := users.Health.Liveness.InitialDelay.Duration.String(); got != "30s" {
		t.Errorf("liveness initialDelay = %s, want 30s", got)
	}
	if got := users.Resources.CPU.MilliValue(); got != 500 {
		t.Errorf("cpu = %dm, want 500m", got)
	}
	if got := app.Observability.SLOs["users-availability"].Window.Hours(); got != 720 {
		t.Errorf("slo window = %vh, want 720h (30d)", got)
	}
	if got := app.Pos("services.users.traffic.retry.on[1]"); got.String() != referenceFile+":111:19" {
		t.Errorf("position of retry.on[1] = %s", got)
	}
}

// TestReferenceInSync fails when the copy in testdata drifts from the
// project's shared reference, when that folder is beside the checkout.
func TestReferenceInSync(t *testing.T) {
	shared, err := os.ReadFile("../../../shared/spec/nubo.reference.yaml")
	if errors.Is(err, os.ErrNotExist) {
		if os.Getenv("CI") == "true" {
			t.Fatal("../shared/spec is not beside this checkout: CI runs beside it")
		}
		t.Skip("../shared/spec is not beside this checkout")
	}
	if err != nil {
		t.Fatal(err)
	}
	ours, err := os.ReadFile(referenceFile)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(shared, ours) {
		t.Fatalf("%s differs from ../shared/spec/nubo.reference.yaml: copy it again and review what changed", referenceFile)
	}
}

func TestDefaults(t *testing.T) {
	app, err := Parse("t.yaml", []byte(`
name: shop
services:
  api:
    run: ./api
    health:
      liveness: {http: {}}
    scaling: {min: 2, max: 4, targetCPU: 50}
    resources: {cpu: 100m}
    traffic:
      loadBalancing: {sticky: {header: x-user}}
`))
	if err != nil {
		t.Fatal(err)
	}
	s := app.Services["api"]
	checks := []struct{ name, got, want string }{
		{"namespace", app.Namespace, "shop"},
		{"replicas from scaling.min", itoa(*s.Replicas), "2"},
		{"restart", s.Restart, "always"},
		{"stopGracePeriod", s.StopGracePeriod.String(), "30s"},
		{"probe period", s.Health.Liveness.Period.String(), "10s"},
		{"probe timeout", s.Health.Liveness.Timeout.String(), "1s"},
		{"probe failureThreshold", itoa(s.Health.Liveness.FailureThreshold), "3"},
		{"probe path", s.Health.Liveness.HTTP.Path, "/"},
		{"sticky implies ring_hash", s.Traffic.LoadBalancing.Algorithm, "ring_hash"},
		{"expose.port", itoa(s.Expose.Port), "80"},
		{"console", app.Local.Console, "127.0.0.1:4500"},
		{"stateDir", app.Local.StateDir, ".nubo"},
		{"metrics interval", app.Observability.Metrics.Interval.String(), "15s"},
		{"mtls", app.Mesh.MTLS, "permissive"},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %q, want %q", c.name, c.got, c.want)
		}
	}
}

func itoa(i int) string { return strconv.Itoa(i) }

// diagStrings returns the diagnostics of a Parse as strings, or nil.
func diagStrings(t *testing.T, yaml string) []string {
	t.Helper()
	_, err := Parse("t.yaml", []byte(yaml))
	if err == nil {
		schemaAgrees(t, compiledSchema(t), yaml, nil)
		return nil
	}
	var ds Diagnostics
	if !errors.As(err, &ds) {
		return []string{err.Error()}
	}
	out := make([]string, len(ds))
	for i, d := range ds {
		out[i] = d.String()
	}
	schemaAgrees(t, compiledSchema(t), yaml, out)
	return out
}

func TestDecodeErrors(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want string
	}{
		{"unknown field with hint", "name: a\nservices:\n  api:\n    rnu: x\n",
			`t.yaml:4:5: services.api.rnu: unknown field "rnu" (did you mean "run"?)`},
		{"unknown section", "name: a\nservice: {}\n",
			`t.yaml:2:1: service: unknown field "service" (did you mean "services"?)`},
		{"bad name", "name: a\nqueues:\n  Orders: {}\n",
			`t.yaml:3:3: queues.Orders: "Orders" is not a valid name: use a DNS label: lowercase letters, digits and '-', at most 63 characters`},
		{"integer", "name: a\nservices:\n  api:\n    run: x\n    port: \"80\"\n",
			`t.yaml:5:11: services.api.port: expected an integer, not the string "80"`},
		{"enum with hint", "name: a\nqueues:\n  q: {type: fifoo}\n",
			`t.yaml:3:13: queues.q.type: "fifoo" is not one of standard, fifo (did you mean "fifo"?)`},
		{"list enum", "name: a\nservices:\n  api:\n    run: x\n    traffic: {retry: {on: [5xx, timeout]}}\n",
			`t.yaml:5:33: services.api.traffic.retry.on[1]: "timeout" is not one of 5xx, gateway-error, connect-failure, reset, retriable-4xx`},
		{"duration", "name: a\nqueues:\n  q: {visibility: 30 seconds}\n",
			`t.yaml:3:19: queues.q.visibility: invalid duration "30 seconds": write e.g. 500ms, 30s, 5m, 1h30m or 30d`},
		{"quantity", "name: a\nservices:\n  api: {run: x, resources: {cpu: lots}}\n",
			`t.yaml:3:34: services.api.resources.cpu: invalid quantity "lots": write e.g. 500m, 2, 512Mi or 10Gi`},
		{"target", "name: a\nrules:\n  r: {target: lambda:x}\n",
			`t.yaml:3:15: rules.r.target: unknown target kind "lambda": write function:, service:, queue:, topic: or an http(s):// URL`},
		{"required", "name: a\nrules:\n  r: {transform: .}\n",
			`t.yaml:3:3: rules.r: missing required field "target"`},
		{"mapping expected", "name: a\nservices: [a, b]\n",
			`t.yaml:2:11: services: expected a mapping, not a list`},
		{"bool", "name: a\nservices:\n  api: {run: x, grpc: yes please}\n",
			`t.yaml:3:23: services.api.grpc: expected true or false, not the string "yes please"`},
		{"missing name", "services: {}\n",
			`t.yaml:1:1: missing required field "name"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := diagStrings(t, tt.yaml)
			for _, g := range got {
				if g == tt.want {
					return
				}
			}
			t.Errorf("want\n  %s\ngot\n  %s", tt.want, strings.Join(got, "\n  "))
		})
	}
}

func TestSyntaxErrors(t *testing.T) {
	tests := []struct{ name, yaml, want string }{
		{"duplicate key", "name: a\nname: b\n", `t.yaml:2:1:`},
		{"bad indentation", "name: a\nservices:\n  api:\n   run: x\n  - b\n", `t.yaml:`},
		{"alias without anchor", "name: *nope\n", `t.yaml:`},
		{"two documents", "name: a\n---\nname: b\n", `a spec file holds one YAML document`},
		{"not a mapping", "- a\n- b\n", `a spec is a mapping of sections`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("t.yaml", []byte(tt.yaml))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestAnchorsAndMerge(t *testing.T) {
	app, err := Parse("t.yaml", []byte(`
name: a
x-probe: &probe {http: {path: /health}, period: 2s}
services:
  api: &svc
    run: ./api
    health: {liveness: *probe}
  worker:
    <<: *svc
    run: ./worker
`))
	if err == nil {
		t.Fatal("x-probe is not a field: want an unknown-field error")
	}
	app, err = Parse("t.yaml", []byte(`
name: a
services:
  api: &svc
    run: ./api
    health: {liveness: &probe {http: {path: /health}, period: 2s}}
  worker:
    <<: *svc
    run: ./worker
    health: {readiness: *probe}
`))
	if err != nil {
		t.Fatal(err)
	}
	w := app.Services["worker"]
	if w.Run != "./worker" || w.Health.Readiness == nil || w.Health.Readiness.Period.String() != "2s" {
		t.Errorf("merge and alias not applied: %+v", w)
	}
}

func TestInclude(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("nubo.yaml", "name: a\ninclude: [more.yaml]\nservices:\n  api: {run: ./api}\ningress:\n  - {name: one, paths: [{path: /, to: 'service:api'}]}\n")
	write("more.yaml", "services:\n  worker: {run: ./worker, port: notanumber}\ningress:\n  - {name: two, paths: [{path: /x, to: 'service:api'}]}\n")
	_, err := Load(filepath.Join(dir, "nubo.yaml"))
	want := filepath.Join(dir, "more.yaml") + ":2:33: services.worker.port: expected an integer"
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("err = %v\nwant an error in the included file: %s", err, want)
	}

	write("more.yaml", "services:\n  worker: {run: ./worker}\ningress:\n  - {name: two, paths: [{path: /x, to: 'service:api'}]}\n")
	app, err := Load(filepath.Join(dir, "nubo.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(app.Services) != 2 || len(app.Ingress) != 2 || app.Ingress[1].Name != "two" {
		t.Errorf("include not merged: %d services, %d ingress", len(app.Services), len(app.Ingress))
	}

	write("more.yaml", "services:\n  api: {run: ./other}\n")
	_, err = Load(filepath.Join(dir, "nubo.yaml"))
	if err == nil || !strings.Contains(err.Error(), "services.api.run: set both here and at") {
		t.Errorf("a conflicting value must name both places, got %v", err)
	}

	write("more.yaml", "include: [nubo.yaml]\n")
	_, err = Load(filepath.Join(dir, "nubo.yaml"))
	if err == nil || !strings.Contains(err.Error(), "include cycle") {
		t.Errorf("an include cycle must be reported, got %v", err)
	}

	write("nubo.yaml", "name: a\ninclude: [missing.yaml]\n")
	_, err = Load(filepath.Join(dir, "nubo.yaml"))
	if err == nil || !strings.Contains(err.Error(), `nubo.yaml:2:11: include "missing.yaml"`) {
		t.Errorf("a missing include must name the file and place, got %v", err)
	}
}

func TestEmptyValuesAreNotNil(t *testing.T) {
	app, err := Parse("t.yaml", []byte("name: a\nqueues:\n  q:\n"))
	if err != nil {
		t.Fatal(err)
	}
	if app.Queues["q"] == nil || app.Queues["q"].Visibility.String() != "30s" {
		t.Errorf("an empty queue must exist with defaults, got %+v", app.Queues["q"])
	}
}
