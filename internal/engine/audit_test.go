package engine

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/nubo-dev/nubo/internal/audit"
)

// The engine keeps audit records as long as the logs: its first record
// removes the older ones and says so in a record of its own.
func TestAuditRetentionFollowsTheLogs(t *testing.T) {
	dir := t.TempDir()
	app := writeSpec(t, dir, "name: t\nobservability:\n  logs: {retention: 24h}\n")
	old := audit.Open(app.StatePath())
	for i := range 3 {
		if _, err := old.Append(audit.Record{Time: time.Now().Add(-48*time.Hour + time.Duration(i)*time.Minute), Actor: "cli:test", Action: "restart"}, nil); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := old.Append(audit.Record{Time: time.Now().Add(-time.Hour), Actor: "cli:test", Action: "scale"}, nil); err != nil {
		t.Fatal(err)
	}
	tr := newAuditTrail(app, prometheus.NewRegistry())
	if _, err := tr.Append(audit.Record{Actor: "cli:test", Action: "stop"}, nil); err != nil {
		t.Fatal(err)
	}
	recs, err := old.Read(audit.Query{})
	if err != nil {
		t.Fatal(err)
	}
	var actions []string
	for _, r := range recs {
		actions = append(actions, r.Action)
	}
	if len(recs) != 3 || actions[0] != "scale" || actions[1] != "audit-prune" || actions[2] != "stop" || recs[1].Detail[:1] != "3" {
		t.Fatalf("records after the engine's first = %v (%+v); want scale, audit-prune (3 removed), stop", actions, recs)
	}
	if n, err := old.Verify(); n != 3 || err != nil {
		t.Fatalf("verify: %d, %v", n, err)
	}
}
