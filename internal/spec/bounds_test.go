package spec

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// aliasBomb is the "billion laughs": nine aliases of nine aliases, nine
// levels deep, 9^9 nodes once expanded.
func aliasBomb() string {
	var b strings.Builder
	b.WriteString("name: x\na: &a [l,l,l,l,l,l,l,l,l]\n")
	prev := "a"
	for _, c := range "bcdefghi" {
		name := string(c)
		b.WriteString(name + ": &" + name + " [" + strings.TrimSuffix(strings.Repeat("*"+prev+",", 9), ",") + "]\n")
		prev = name
	}
	return b.String()
}

// mergeBomb merges a mapping eight times into the next, twelve levels
// deep: 8^12 merged mappings, shallow enough for the depth bound.
func mergeBomb() string {
	var b strings.Builder
	b.WriteString("name: x\nm0: &m0 {k0: 1}\n")
	for i := 1; i <= 12; i++ {
		p := "*m" + strconv.Itoa(i-1)
		b.WriteString("m" + strconv.Itoa(i) + ": &m" + strconv.Itoa(i) + " {<<: [" + strings.TrimSuffix(strings.Repeat(p+", ", 8), ", ") + "], k" + strconv.Itoa(i) + ": 1}\n")
	}
	return b.String()
}

// TestHostileSpecs loads specs built to exhaust the loader: each must be
// refused with an error naming file:line:col. The deadline only keeps a
// regression from hanging the test run; it is no performance threshold.
func TestHostileSpecs(t *testing.T) {
	t.Parallel()
	var deep strings.Builder
	deep.WriteString("name: x\n")
	for i := range 2000 {
		deep.WriteString(strings.Repeat(" ", i) + "k:\n")
	}
	deepBlock := deep.String()
	tests := []struct {
		name, spec string
		want       string // a regexp of the error
	}{
		{"alias bomb", aliasBomb(), `nubo\.yaml:\d+:\d+: .*more than \d+ YAML nodes`},
		{"merge-key bomb", mergeBomb(), `nubo\.yaml:\d+:\d+: .*more than \d+ YAML nodes`},
		{"200 KB of [", "name: x\na: " + strings.Repeat("[", 200<<10) + "\n", `nubo\.yaml:2:\d+: nested more than 64 levels deep`},
		{"200 KB of {a: ", "name: x\na: " + strings.Repeat("{a: ", 50<<10) + "\n", `nubo\.yaml:2:\d+: nested more than 64 levels deep`},
		{"2000 indented levels", deepBlock, `nubo\.yaml:\d+:\d+: nested more than 64 levels deep`},
		{"200 KB of - - -", "name: x\na:\n  " + strings.Repeat("- ", 100<<10) + "x\n", `nubo\.yaml:\d+:\d+: `},
		{"/dev/zero as an include", "name: x\ninclude: [/dev/zero]\n", `nubo\.yaml:2:\d+: include "/dev/zero": .*not a regular file`},
		{"a folder as an include", "name: x\ninclude: [/]\n", `nubo\.yaml:2:\d+: include "/": .*not a regular file`},
	}
	if len(aliasBomb()) > 400 {
		t.Fatalf("the alias bomb is %d bytes; the issue's was 373", len(aliasBomb()))
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			file := filepath.Join(t.TempDir(), "nubo.yaml")
			if err := os.WriteFile(file, []byte(tt.spec), 0o600); err != nil {
				t.Fatal(err)
			}
			err := loadWithin(t, file, 30*time.Second)
			if err == nil {
				t.Fatal("loaded")
			}
			if !regexp.MustCompile(tt.want).MatchString(err.Error()) {
				t.Errorf("error %q, want one matching %s", truncate(err.Error(), 300), tt.want)
			}
		})
	}
}

// TestBigSpecWithinNodeBound checks that the node bound leaves room for
// large honest specs: many services, no aliases.
func TestBigSpecWithinNodeBound(t *testing.T) {
	t.Parallel()
	var b strings.Builder
	b.WriteString("name: big\nservices:\n")
	for i := range 2000 {
		b.WriteString("  svc" + strconv.Itoa(i) + ": {image: \"img:1\", env: {A: \"1\", B: \"2\"}}\n")
	}
	file := filepath.Join(t.TempDir(), "nubo.yaml")
	if err := os.WriteFile(file, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := loadWithin(t, file, 60*time.Second); err != nil {
		t.Fatalf("a big honest spec: %v", truncate(err.Error(), 300))
	}
}

// loadWithin runs Load, failing the test if it has not returned by d.
func loadWithin(t *testing.T, file string, d time.Duration) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	done := make(chan error, 1)
	go func() { _, err := Load(file); done <- err }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		t.Fatalf("Load(%s) still running after %s", file, d)
		return nil
	}
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}
