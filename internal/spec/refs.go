package spec

import (
	"fmt"
	"strings"
)

// Refs resolves the ${...} references whose meaning is the same wherever
// the spec runs: env.NAME, secrets.NAME.KEY, config.NAME.KEY and
// services.NAME.url (the mesh name, as in Kubernetes: callers reach it
// through their proxy). The engine and `nubo serve` differ only in where
// values come from and in what Other does with the rest.
type Refs struct {
	App    *App
	Getenv func(string) string
	Secret func(name, key string) (string, bool)
	// SecretHint ends the error of a missing secret, saying where it was
	// looked for.
	SecretHint string
	// Other resolves every other reference (databases, the parts not run
	// yet); nil refuses them.
	Other func(expr string, parts []string) (string, error)
}

// Lookup resolves one reference, for Interpolate.
func (r Refs) Lookup(expr string) (string, error) {
	parts := strings.Split(expr, ".")
	switch {
	case parts[0] == "env" && len(parts) == 2:
		return r.Getenv(parts[1]), nil
	case parts[0] == "secrets" && len(parts) == 3:
		if r.Secret != nil {
			if v, ok := r.Secret(parts[1], parts[2]); ok {
				return v, nil
			}
		}
		return "", fmt.Errorf("secret %q has no value for key %q%s", parts[1], parts[2], r.SecretHint)
	case parts[0] == "config" && len(parts) == 3:
		if v, ok := r.App.Config[parts[1]][parts[2]]; ok {
			return v, nil
		}
		return "", fmt.Errorf("config %q has no key %q", parts[1], parts[2])
	case parts[0] == "services" && len(parts) == 3 && parts[2] == "url":
		return "http://" + parts[1], nil
	}
	if r.Other == nil {
		return "", fmt.Errorf("${%s} cannot be resolved here", expr)
	}
	return r.Other(expr, parts)
}
