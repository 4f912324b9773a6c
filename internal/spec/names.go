package spec

import (
	"regexp"
	"sort"

	"k8s.io/apimachinery/pkg/util/validation"
)

// The patterns of the names that become Kubernetes names; the checks
// themselves are Kubernetes' own (isDNSLabel, isServiceName), these are for
// the JSON Schema, which also gets their maximum length.
var (
	dnsLabelRe     = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)
	dns1035LabelRe = regexp.MustCompile(`^[a-z]([-a-z0-9]*[a-z0-9])?$`)
	dnsSubdomainRe = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`)
)

// dnsLabelMax is the length limit of both kinds of DNS label.
const dnsLabelMax = validation.DNS1123LabelMaxLength

var (
	envNameRe   = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	identRe     = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	stageNameRe = regexp.MustCompile(`^(\$default|[A-Za-z0-9_-]{1,128})$`)
	labelNameRe = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)
	// roleNameRe is a PostgreSQL identifier that does not end in '_', so
	// that the role's Secret name, with '-' for '_', ends as a DNS name must.
	roleNameRe  = regexp.MustCompile(`^([A-Za-z]|[A-Za-z_][A-Za-z0-9_]{0,61}[A-Za-z0-9])$`)
	eventTypeRe = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:/-]*$`)
)

// isDNSLabel reports whether s is an RFC 1123 label, as Kubernetes checks
// the names of Namespaces, ConfigMaps, Secrets, Ingresses, containers and
// most other objects (subdomains allow more, but names here are also path
// elements of ${...} and of field paths, where a dot has a meaning).
func isDNSLabel(s string) bool { return len(validation.IsDNS1123Label(s)) == 0 }

// isServiceName reports whether s is an RFC 1035 label, as Kubernetes
// checks the name of a Service: services, databases, functions and mesh
// hosts each become one, and callers reach them as http://NAME.
func isServiceName(s string) bool { return len(validation.IsDNS1035Label(s)) == 0 }

// isSubdomain reports whether s is an RFC 1123 subdomain, as Kubernetes
// checks the names of Secrets, which imagePullSecrets name.
func isSubdomain(s string) bool { return len(validation.IsDNS1123Subdomain(s)) == 0 }

// dnsWhat, serviceWhat and subdomainWhat say what a valid name is, in errors.
const (
	dnsWhat       = "a DNS label: lowercase letters, digits and '-', at most 63 characters"
	serviceWhat   = "a DNS label that starts with a letter (a Kubernetes Service name): lowercase letters, digits and '-', at most 63 characters"
	subdomainWhat = "a DNS subdomain: DNS labels joined by '.', at most 253 characters"
)

// nameRules check the keys of named maps, chosen by the `names` struct tag.
var nameRules = map[string]struct {
	valid func(string) bool
	what  string
}{
	"dns":        {isDNSLabel, dnsWhat},
	"service":    {isServiceName, serviceWhat},
	"subdomain":  {isSubdomain, subdomainWhat},
	"role":       {roleNameRe.MatchString, "a PostgreSQL role name: letters, digits and '_', not starting with a digit nor ending with '_', at most 63 characters"},
	"env":        {envNameRe.MatchString, "an environment variable name: letters, digits and '_', not starting with a digit"},
	"identifier": {identRe.MatchString, "an identifier: letters, digits and '_', not starting with a digit"},
	"stage":      {stageNameRe.MatchString, "$default, or letters, digits, '_' and '-'"},
	"label":      {labelNameRe.MatchString, "a Prometheus label name: letters, digits and '_'"},
	"eventType":  {eventTypeRe.MatchString, "a CloudEvents type: letters, digits and . _ : / -"},
}

// Suggest returns the candidate closest to s when it is close enough to be a
// likely typo (1 edit for short names, 2, or 3 for long ones), or "". Every
// "did you mean" of nubo comes from here.
func Suggest(s string, candidates []string) string {
	best, bestDist := "", 1<<30
	for _, c := range candidates {
		if d := editDistance(s, c); d < bestDist {
			best, bestDist = c, d
		}
	}
	limit := 2
	if len(s) <= 3 {
		limit = 1
	}
	if len(s) >= 10 {
		limit = 3
	}
	if bestDist == 0 || bestDist > limit {
		return ""
	}
	return best
}

// editDistance is the optimal-string-alignment distance: insertions, deletions,
// substitutions and swaps of neighbours ("rnu" for "run") each cost one.
func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	d := make([][]int, len(ra)+1)
	for i := range d {
		d[i] = make([]int, len(rb)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(ra); i++ {
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(ra)][len(rb)]
}

// sortedKeys returns a map's keys in order, so that output and errors are stable.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
