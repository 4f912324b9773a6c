package engine

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/nubo-dev/nubo/internal/audit"
	"github.com/nubo-dev/nubo/internal/spec"
)

// pruneEvery is how often the engine removes the audit records older
// than the logs' retention: on its first record, then at most hourly.
const pruneEvery = time.Hour

// auditTrail appends to the state directory's audit trail, counts the
// records by action and result (nubo_audit_records_total), and keeps them
// as long as the logs (observability.logs.retention).
type auditTrail struct {
	trail     *audit.Trail
	records   *prometheus.CounterVec
	retention time.Duration

	mu        sync.Mutex // guards lastPrune
	lastPrune time.Time
}

func newAuditTrail(app *spec.App, reg prometheus.Registerer) *auditTrail {
	t := &auditTrail{
		retention: app.Observability.Logs.Retention.Duration,
		trail:     audit.Open(app.StatePath()),
		records: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "nubo_audit_records_total", Help: "Changes made to the running system, as the audit trail records them.",
		}, []string{"action", "result"}),
	}
	reg.MustRegister(t.records)
	return t
}

// Append implements console.Auditor.
func (t *auditTrail) Append(r audit.Record, err error) (audit.Record, error) {
	t.prune(time.Now())
	r, aerr := t.trail.Append(r, err)
	t.records.WithLabelValues(r.Action, r.Result).Inc()
	return r, aerr
}

// Read implements console.Auditor.
func (t *auditTrail) Read(q audit.Query) ([]audit.Record, error) { return t.trail.Read(q) }

// Verify implements console.Auditor.
func (t *auditTrail) Verify() (int, error) { return t.trail.Verify() }

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

// prune removes the records older than the retention, at most every
// pruneEvery, and records that it did. A failed prune is recorded too:
// the trail keeps growing, which is no reason to refuse a record.
func (t *auditTrail) prune(now time.Time) {
	if t.retention <= 0 {
		return
	}
	t.mu.Lock()
	due := now.Sub(t.lastPrune) >= pruneEvery
	if due {
		t.lastPrune = now
	}
	t.mu.Unlock()
	if !due {
		return
	}
	before := now.Add(-t.retention)
	n, err := t.trail.Prune(before)
	if n == 0 && err == nil {
		return
	}
	r, _ := t.trail.Append(audit.Record{Actor: "engine", Action: "audit-prune",
		Detail: fmt.Sprintf("%d records before %s removed (observability.logs.retention %s)", n, before.UTC().Format(time.RFC3339), t.retention)}, err)
	t.records.WithLabelValues(r.Action, r.Result).Inc()
}
