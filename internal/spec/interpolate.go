package spec

import (
	"fmt"
	"strings"
)

// Interpolate replaces every ${expr} in s with lookup(expr) and every $${
// with a literal ${, the same grammar the validators check. The engine and
// the renderer call it with the values of their world: real ports and secret
// values locally, Kubernetes names and Secret references in manifests.
func Interpolate(s string, lookup func(expr string) (string, error)) (string, error) {
	if !strings.Contains(s, "${") {
		return s, nil
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		switch {
		case strings.HasPrefix(s[i:], "$${"):
			b.WriteString("${")
			i += 3
		case strings.HasPrefix(s[i:], "${"):
			end := strings.IndexByte(s[i+2:], '}')
			if end < 0 {
				return "", fmt.Errorf("unterminated ${ in %q", s)
			}
			v, err := lookup(s[i+2 : i+2+end])
			if err != nil {
				return "", err
			}
			b.WriteString(v)
			i += 2 + end + 1
		default:
			b.WriteByte(s[i])
			i++
		}
	}
	return b.String(), nil
}
