package metrics

import (
	"errors"
	"fmt"

	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"
)

// CheckRules reports what SetRules would refuse in groups (an expression
// that does not parse, a group defined twice, a rule that neither records
// nor alerts), without touching the running rules: the first phase of the
// engine's two-phase reload.
func CheckRules(groups []rulefmt.RuleGroup) error {
	p := parser.NewParser(parser.Options{})
	names := map[string]bool{}
	var errs []error
	for _, rg := range groups {
		if names[rg.Name] {
			errs = append(errs, fmt.Errorf("rule group %q: defined twice", rg.Name))
			continue
		}
		names[rg.Name] = true
		for i, r := range rg.Rules {
			if r.Alert == "" && r.Record == "" {
				errs = append(errs, fmt.Errorf("rule group %q, rule %d: neither record nor alert", rg.Name, i+1))
				continue
			}
			if _, err := p.ParseExpr(r.Expr); err != nil {
				errs = append(errs, fmt.Errorf("rule group %q, rule %d (%s): expr: %w", rg.Name, i+1, r.Record+r.Alert, err))
			}
		}
	}
	return errors.Join(errs...)
}
