package k8s

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/promql/parser"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/nubo-dev/nubo/internal/rulegroups"
)

// TestPrometheusRulesAreTheEngines checks that the PrometheusRules hold
// exactly the rules `nubo up` evaluates, and that Prometheus parses each.
func TestPrometheusRulesAreTheEngines(t *testing.T) {
	p := parser.NewParser(parser.Options{})
	for _, file := range []string{"../../examples/shop/nubo.yaml", "../spec/testdata/nubo.reference.yaml"} {
		app := loadSpec(t, file)
		want, err := rulegroups.BuildFor(app, rulegroups.Kubernetes)
		if err != nil {
			t.Fatal(err)
		}
		res, err := Render(app, Options{})
		if err != nil {
			t.Fatal(err)
		}
		got := map[string][]string{} // group -> exprs
		for _, o := range res.Objects {
			if o.GetKind() != "PrometheusRule" {
				continue
			}
			groups, _, _ := unstructured.NestedSlice(o.Object, "spec", "groups")
			for _, g := range groups {
				gm := g.(map[string]any)
				rules, _ := gm["rules"].([]any)
				for _, r := range rules {
					expr := r.(map[string]any)["expr"].(string)
					if _, err := p.ParseExpr(expr); err != nil {
						t.Errorf("%s: %s: %v\n%s", file, ObjectName(o), err, expr)
					}
					got[gm["name"].(string)] = append(got[gm["name"].(string)], expr)
				}
			}
		}
		if len(want) == 0 {
			t.Fatalf("%s has no rules: the test checks nothing", file)
		}
		for _, g := range want {
			if len(got[g.Name]) != len(g.Rules) {
				t.Errorf("%s: group %s has %d rules rendered, the engine evaluates %d", file, g.Name, len(got[g.Name]), len(g.Rules))
				continue
			}
			for i, r := range g.Rules {
				if got[g.Name][i] != r.Expr {
					t.Errorf("%s: group %s rule %d: rendered %q, the engine's %q", file, g.Name, i, got[g.Name][i], r.Expr)
				}
			}
		}
		if len(got) != len(want) {
			t.Errorf("%s: %d groups rendered, the engine has %d", file, len(got), len(want))
		}
	}
}

func TestDurations(t *testing.T) {
	for _, c := range []struct {
		d    time.Duration
		want string
	}{
		{0, "0s"}, {300 * time.Millisecond, "300ms"}, {90 * time.Minute, "1h30m"}, {720 * time.Hour, "720h"},
		{time.Hour + 500*time.Millisecond, "1h500ms"}, {time.Microsecond, "1ms"},
	} {
		if got := dur(c.d); got != c.want {
			t.Errorf("dur(%v) = %q, want %q", c.d, got, c.want)
		}
	}
	if got := retentionDays("0 3 * * *", 7); got != 7 {
		t.Errorf("7 daily backups: %d days, want 7", got)
	}
	if got := retentionDays("@every 6h", 7); got != 2 {
		t.Errorf("7 backups every 6h: %d days, want 2 (42h rounded up)", got)
	}
	if got := cnpgSchedule("0 3 * * *"); !strings.HasPrefix(got, "0 0 3") {
		t.Errorf("cnpgSchedule = %q, want a seconds field first", got)
	}
}
