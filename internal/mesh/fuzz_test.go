package mesh

import (
	"net/url"
	"strings"
	"testing"

	"github.com/nubo-dev/nubo/internal/spec"
	"github.com/nubo-dev/nubo/internal/urlpath"
)

// fuzzRule is one ingress path rule as the reference matcher sees it.
type fuzzRule struct{ host, path string }

// fuzzRules cover exact hosts, nested wildcards, rules without a host,
// "/" and prefixes that are prefixes of each other.
var fuzzRules = []fuzzRule{
	{"shop.test", "/api"}, {"shop.test", "/api/v1"}, {"shop.test", "/"}, {"shop.test", "/apis"},
	{"*.example.com", "/x"}, {"*.example.com", "/"}, {"*.a.example.com", "/"}, {"*.a.example.com", "/deep/er"},
	{"", "/public"}, {"", "/static/"}, {"*", "/public/x"},
}

// referenceRoute is the Kubernetes Ingress rule, written plainly: the
// rules of the exact host, then of the wildcards covering the host (one
// label, longest suffix first), then those without a host; in each group
// the longest matching prefix, the first written on a tie.
func referenceRoute(host, path string) (fuzzRule, bool) {
	prefixMatch := func(prefix string) bool {
		prefix = strings.TrimRight(prefix, "/")
		return prefix == "" || path == prefix || strings.HasPrefix(path, prefix+"/")
	}
	best := func(keep func(r fuzzRule) bool) (fuzzRule, bool) {
		var out fuzzRule
		found, n := false, -1
		for _, r := range fuzzRules {
			if l := len(strings.TrimRight(r.path, "/")); keep(r) && prefixMatch(r.path) && l > n {
				out, found, n = r, true, l
			}
		}
		return out, found
	}
	if r, ok := best(func(r fuzzRule) bool { return r.host == host }); ok {
		return r, true
	}
	for _, suffix := range []string{".a.example.com", ".example.com"} {
		label, ok := strings.CutSuffix(host, suffix)
		if ok && label != "" && !strings.Contains(label, ".") {
			if r, ok := best(func(r fuzzRule) bool { return r.host == "*"+suffix }); ok {
				return r, true
			}
		}
	}
	return best(func(r fuzzRule) bool { return r.host == "" || r.host == "*" })
}

// FuzzIngressRoute checks the ingress's host and path matching against
// referenceRoute, on the path the ingress forwards (normalised as
// internal/urlpath does before matching), for any Host header and target.
func FuzzIngressRoute(f *testing.F) {
	var ins []*spec.Ingress
	for i, r := range fuzzRules {
		ins = append(ins, &spec.Ingress{Name: string(rune('a' + i)), Host: r.host, Paths: []*spec.IngressPath{{Path: r.path, To: "gateway"}}})
	}
	table, _, err := compileIngress(&compiled{}, ins)
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range [][2]string{
		{"shop.test", "/api/v1/x"}, {"SHOP.test.", "/apis"}, {"shop.test:8080", "/api/../public"}, {"b.a.example.com", "/deep/er/x"},
		{"a.example.com", "/deep/er"}, {"x.y.example.com", "/x"}, {".example.com", "/x"}, {"other", "/public/x/%2e%2e/y"},
		{"other", "/static"}, {"[::1]:80", "/public"}, {"shop.test", "/api%2Fv1"},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, hostport, target string) {
		u, err := url.ParseRequestURI(target)
		if err != nil {
			return
		}
		path, err := urlpath.Clean(u.Path, u.RawPath)
		if err != nil || !strings.HasPrefix(path, "/") {
			return // answered 400 before any rule is looked at
		}
		host, _, _ := splitHostPort(hostport)
		host = lowerASCII(strings.TrimSuffix(host, "."))
		got := table.route(host, path)
		want, ok := referenceRoute(host, path)
		switch {
		case got == nil && ok:
			t.Fatalf("host %q path %q: no rule, want %s %s", host, path, want.host, want.path)
		case got != nil && !ok:
			t.Fatalf("host %q path %q: rule %s %q, want none", host, path, got.ingress, got.prefix)
		case got != nil:
			r := fuzzRules[got.ingress[0]-'a']
			if r != want {
				t.Fatalf("host %q path %q: rule %s %s, want %s %s", host, path, r.host, r.path, want.host, want.path)
			}
		}
	})
}
