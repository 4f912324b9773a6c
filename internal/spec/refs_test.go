package spec

import (
	"strings"
	"testing"
)

func TestRefs(t *testing.T) {
	app := &App{Config: map[string]map[string]string{"cfg": {"MODE": "fast"}}}
	r := Refs{App: app, Getenv: func(k string) string { return "env-" + k },
		Secret:     func(n, k string) (string, bool) { return "s3cret", n == "db" && k == "PASSWORD" },
		SecretHint: " (hint)"}
	for expr, want := range map[string]string{
		"env.HOME": "env-HOME", "secrets.db.PASSWORD": "s3cret", "config.cfg.MODE": "fast", "services.users.url": "http://users",
	} {
		if got, err := r.Lookup(expr); err != nil || got != want {
			t.Errorf("%s = %q, %v; want %q", expr, got, err, want)
		}
	}
	for expr, want := range map[string]string{
		"secrets.db.USER":       `secret "db" has no value for key "USER" (hint)`,
		"config.cfg.NOPE":       `config "cfg" has no key "NOPE"`,
		"databases.shop-db.url": "cannot be resolved here",
	} {
		if _, err := r.Lookup(expr); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", expr, err, want)
		}
	}
	r.Other = func(expr string, parts []string) (string, error) { return parts[1], nil }
	if got, _ := r.Lookup("databases.shop-db.url"); got != "shop-db" {
		t.Errorf("Other was not asked: %q", got)
	}
}
