package spec

import (
	"errors"
	"testing"
)

func TestInterpolate(t *testing.T) {
	vals := map[string]string{"env.HOME": "/home/a", "services.users.url": "http://users"}
	lookup := func(e string) (string, error) {
		v, ok := vals[e]
		if !ok {
			return "", errors.New("unknown " + e)
		}
		return v, nil
	}
	tests := []struct{ in, want, err string }{
		{"plain", "plain", ""},
		{"${services.users.url}/x", "http://users/x", ""},
		{"a ${env.HOME} b ${env.HOME}", "a /home/a b /home/a", ""},
		{"literal $${env.HOME}", "literal ${env.HOME}", ""},
		{"${nope}", "", "unknown nope"},
		{"${env.HOME", "", `unterminated ${ in "${env.HOME"`},
	}
	for _, tt := range tests {
		got, err := Interpolate(tt.in, lookup)
		if tt.err != "" {
			if err == nil || err.Error() != tt.err {
				t.Errorf("Interpolate(%q) err = %v, want %q", tt.in, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("Interpolate(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}
