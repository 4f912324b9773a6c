package audit

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
)

// Records older than the retention go; the chain still verifies, goes on
// from where it was, and a record removed from the new start is still
// found. Export carries the anchor with the trail.
func TestPruneKeepsTheChain(t *testing.T) {
	tr := Open(t.TempDir())
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range 10 {
		if _, err := tr.Append(Record{Time: start.Add(time.Duration(i) * time.Hour), Actor: "cli:test", Action: "restart", Target: fmt.Sprint(i)}, nil); err != nil {
			t.Fatal(err)
		}
	}
	n, err := tr.Prune(start.Add(4 * time.Hour))
	if err != nil || n != 4 {
		t.Fatalf("prune: %d, %v; want 4 removed", n, err)
	}
	recs, _ := tr.Read(Query{})
	if len(recs) != 6 || recs[0].Seq != 5 || recs[0].Target != "4" {
		t.Fatalf("after the prune: %d records, the first %+v", len(recs), recs[0])
	}
	if n, err := tr.Verify(); n != 6 || err != nil {
		t.Fatalf("verify after the prune: %d, %v", n, err)
	}
	r, err := tr.Append(Record{Actor: "cli:test", Action: "stop"}, nil)
	if err != nil || r.Seq != 11 {
		t.Fatalf("the next record: %+v, %v; want number 11", r, err)
	}
	if n, err := tr.Prune(start.Add(4 * time.Hour)); n != 0 || err != nil {
		t.Fatalf("a second prune at the same time: %d, %v", n, err)
	}
	trail, anchor, err := tr.Export()
	if err != nil || !strings.Contains(string(anchor), `"seq":4`) || strings.Count(string(trail), "\n") != 7 {
		t.Fatalf("export: %d lines, anchor %s, %v", strings.Count(string(trail), "\n"), anchor, err)
	}
	// The first remaining record removed: the anchor says it is missing.
	lines := strings.SplitAfter(string(trail), "\n")
	os.WriteFile(tr.Path(), []byte(strings.Join(lines[1:], "")), 0o600)
	var be *BreakError
	if _, err := tr.Verify(); !errors.As(err, &be) || be.Line != 1 {
		t.Fatalf("a record removed after the anchor: %v", err)
	}
	// Everything pruned: the next record still follows the anchor.
	os.WriteFile(tr.Path(), []byte(trail), 0o600)
	if n, err := tr.Prune(time.Now().Add(time.Hour)); n != 7 || err != nil {
		t.Fatalf("prune all: %d, %v", n, err)
	}
	r, err = tr.Append(Record{Actor: "cli:test", Action: "stop"}, nil)
	if err != nil || r.Seq != 12 {
		t.Fatalf("the record after an empty trail: %+v, %v; want number 12", r, err)
	}
	if n, err := tr.Verify(); n != 1 || err != nil {
		t.Fatalf("verify: %d, %v", n, err)
	}
}
