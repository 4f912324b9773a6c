package parity

import (
	"testing"
)

// TestEveryRowHasAK8sColumn: every feature says what it becomes on
// Kubernetes, and the column names no pattern the registry lacks.
func TestEveryRowHasAK8sColumn(t *testing.T) {
	patterns := map[string]bool{}
	for _, r := range Registry() {
		patterns[r.Pattern] = true
		if r.K8s == "" {
			t.Errorf("row %q (%s) has no k8s column: add what nubo render makes of it to k8sObjects in registry.go", r.Pattern, r.Feature)
		}
	}
	for p := range k8sObjects() {
		if !patterns[p] {
			t.Errorf("k8sObjects names %q, which is no row's pattern", p)
		}
	}
}

// TestReportCarriesTheK8sColumn: the rows a spec uses keep their column.
func TestReportCarriesTheK8sColumn(t *testing.T) {
	rows := Report(loadReference(t))
	if len(rows) == 0 {
		t.Fatal("the reference uses no row")
	}
	for _, r := range rows {
		if r.K8s == "" {
			t.Errorf("reported row %q has no k8s column", r.Pattern)
		}
	}
}
