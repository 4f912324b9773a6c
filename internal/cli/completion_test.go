package cli

import (
	"strings"
	"testing"
)

// TestCompletionNamesFromTheSpec: the shells' dynamic completion offers
// the spec's names for the commands that take them.
func TestCompletionNamesFromTheSpec(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	file := writeFile(t, dir, "nubo.yaml", `name: demo
services:
  web: {run: "true"}
  api: {run: "true"}
functions:
  resize: {run: "true"}
queues:
  jobs: {}
`)
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"restart", ""}, "api\nweb\n"},
		{[]string{"logs", ""}, "api\nweb\n"},
		{[]string{"invoke", ""}, "resize\n"},
		{[]string{"publish", "queue", ""}, "jobs\n"},
		{[]string{"dlq", "show", ""}, "jobs\n"},
	} {
		r := runInProcess(t, append([]string{"-f", file, "__complete"}, tt.args...)...)
		names, _, _ := strings.Cut(r.stdout, ":")
		if r.code != 0 || names != tt.want {
			t.Errorf("complete %v: got %q, want %q\n%s", tt.args, names, tt.want, r)
		}
	}
	for _, shell := range []string{"bash", "zsh", "fish"} {
		if r := runInProcess(t, "completion", shell); r.code != 0 || !strings.Contains(r.stdout, "nubo") {
			t.Errorf("completion %s: %s", shell, r)
		}
	}
}
