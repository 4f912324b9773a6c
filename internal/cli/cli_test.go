package cli

import (
	"encoding/json"
	"runtime"
	"strings"
	"testing"
)

// TestRunExitCodes runs the command tree in process: 0 on success, 1 on a
// failure, 2 on a usage mistake, with the message on stderr.
func TestRunExitCodes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		args   []string
		code   int
		stdout string // a substring stdout must have
		stderr string // a substring stderr must have
	}{
		{"no command shows help", nil, 0, "Available Commands:", ""},
		{"help flag", []string{"validate", "--help"}, 0, "--output", ""},
		{"unknown command", []string{"deploy-all"}, 2, "", `unknown command "deploy-all"`},
		{"suggestion", []string{"valdate"}, 2, "", `did you mean "validate"?`},
		{"unknown flag", []string{"validate", "--bogus"}, 2, "", "unknown flag: --bogus"},
		{"unexpected argument", []string{"validate", "nubo.yaml"}, 2, "", "Run 'nubo validate --help' for usage."},
		{"bad output format", []string{"validate", "-o", "yaml"}, 2, "", `--output "yaml": use text or json`},
		{"too many directories", []string{"init", "a", "b"}, 2, "", "accepts at most 1 arg"},
		{"bad name", []string{"init", "--name", "Bad_Name", t.TempDir()}, 2, "", `--name "Bad_Name"`},
		{"failure", []string{"validate", "-f", "/nonexistent/nubo.yaml"}, 1, "", "no such file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := runInProcess(t, tt.args...)
			if r.code != tt.code || !strings.Contains(r.stdout, tt.stdout) || !strings.Contains(r.stderr, tt.stderr) {
				t.Errorf("nubo %v:\n%s\nwant exit %d, stdout with %q, stderr with %q", tt.args, r, tt.code, tt.stdout, tt.stderr)
			}
		})
	}
}

func TestSchema(t *testing.T) {
	t.Parallel()
	r := runInProcess(t, "schema")
	if r.code != 0 {
		t.Fatalf("schema:\n%s", r)
	}
	var schema map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &schema); err != nil {
		t.Fatalf("schema output is not JSON: %v", err)
	}
	if schema["$schema"] == nil || schema["properties"] == nil {
		t.Errorf("not a JSON Schema: keys %v", keysOf(schema))
	}
}

func keysOf(m map[string]any) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func TestVersion(t *testing.T) {
	t.Parallel()
	r := runBinary(t, t.TempDir(), "version")
	if r.code != 0 || !strings.HasPrefix(r.stdout, "nubo ") || !strings.Contains(r.stdout, runtime.Version()) {
		t.Errorf("version:\n%s", r)
	}
	r = runBinary(t, t.TempDir(), "version", "--output", "json")
	var v map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &v); err != nil || r.code != 0 {
		t.Fatalf("version --output json: %v\n%s", err, r)
	}
	if v["version"] == "" || v["version"] == nil || v["go"] != runtime.Version() || v["platform"] != runtime.GOOS+"/"+runtime.GOARCH {
		t.Errorf("version document %v", v)
	}
	if rev, ok := v["revision"]; ok && len(rev.(string)) < 7 {
		t.Errorf("revision %q", rev)
	}
}
