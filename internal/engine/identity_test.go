package engine

import (
	"slices"
	"testing"

	"github.com/nubo-dev/nubo/internal/spec"
)

// TestIdentityCallers checks that the mesh trusts the gateway with
// identity headers only when the gateway's principal is its alone.
func TestIdentityCallers(t *testing.T) {
	t.Parallel()
	gw := &spec.Gateway{}
	tests := []struct {
		name string
		app  *spec.App
		want []string
	}{
		{"no gateway", &spec.App{}, nil},
		{"a gateway", &spec.App{Gateway: gw}, []string{"gateway"}},
		{"a service named gateway", &spec.App{Gateway: gw, Services: map[string]*spec.Service{"gateway": {}}}, nil},
		{"a function named gateway", &spec.App{Gateway: gw, Functions: map[string]*spec.Function{"gateway": {}}}, nil},
	}
	for _, tt := range tests {
		if got := identityCallers(tt.app); !slices.Equal(got, tt.want) {
			t.Errorf("%s: %q, want %q", tt.name, got, tt.want)
		}
	}
}
