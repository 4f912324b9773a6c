package engine

import (
	"crypto/sha256"
	"encoding/hex"
	"os"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/nubo-dev/nubo/internal/audit"
	"github.com/nubo-dev/nubo/internal/spec"
)

// auditTrail appends to the state directory's audit trail and counts the
// records by action and result (nubo_audit_records_total).
type auditTrail struct {
	trail   *audit.Trail
	records *prometheus.CounterVec
}

func newAuditTrail(app *spec.App, reg prometheus.Registerer) *auditTrail {
	t := &auditTrail{
		trail: audit.Open(app.StatePath()),
		records: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "nubo_audit_records_total", Help: "Changes made to the running system, as the audit trail records them.",
		}, []string{"action", "result"}),
	}
	reg.MustRegister(t.records)
	return t
}

// Append implements console.Auditor.
func (t *auditTrail) Append(r audit.Record, err error) (audit.Record, error) {
	r, aerr := t.trail.Append(r, err)
	t.records.WithLabelValues(r.Action, r.Result).Inc()
	return r, aerr
}

// specDigest is the SHA-256 of the spec's files, in order: which version of
// the spec a reload took.
func specDigest(app *spec.App) string {
	h := sha256.New()
	for _, f := range app.Files() {
		data, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		h.Write([]byte(f))
		h.Write(data)
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}
