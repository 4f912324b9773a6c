package console

import (
	"encoding/json"
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/nubo-dev/nubo/internal/audit"
)

// TestAuditTrail: the console's restart is recorded with its actor, GET
// /admin/v1/audit filters by action and limit, and a record edited on disk
// shows as a break of the chain.
func TestAuditTrail(t *testing.T) {
	t.Parallel()
	trail := audit.Open(t.TempDir())
	s := startServer(t, Config{Backend: newTestBackend(), Audit: trail})
	base := "http://" + s.Addr()
	for range 2 {
		if a := do(t, "POST", base+"/admin/v1/services/users/restart", http.Header{audit.ActorHeader: {"console"}}); a.code != http.StatusAccepted {
			t.Fatalf("restart: %d %s", a.code, a.body)
		}
	}
	if _, err := trail.Append(audit.Record{Actor: "cli:me", Action: "publish", Target: "orders"}, nil); err != nil {
		t.Fatal(err)
	}
	read := func(query string) AuditTrail {
		t.Helper()
		a := do(t, "GET", base+"/admin/v1/audit"+query, nil)
		if a.code != http.StatusOK {
			t.Fatalf("GET %s: %d %s", query, a.code, a.body)
		}
		var out AuditTrail
		if err := json.Unmarshal([]byte(a.body), &out); err != nil {
			t.Fatal(err)
		}
		return out
	}
	all := read("")
	if len(all.Records) != 3 || all.Verified != 3 || all.Break != "" {
		t.Fatalf("whole trail: %+v", all)
	}
	if r := all.Records[0]; r.Actor != "console" || r.Action != "restart" || r.Target != "users" || r.Result != audit.OK {
		t.Errorf("the console's restart: %+v", r)
	}
	if got := read("?action=restart&limit=1"); len(got.Records) != 1 || got.Records[0].Seq != 2 {
		t.Errorf("the last restart: %+v", got.Records)
	}
	for _, bad := range []string{"?limit=0", "?limit=x", "?since=yesterday"} {
		if a := do(t, "GET", base+"/admin/v1/audit"+bad, nil); a.code != http.StatusBadRequest {
			t.Errorf("%s: %d %s", bad, a.code, a.body)
		}
	}

	b, err := os.ReadFile(trail.Path())
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(trail.Path(), []byte(strings.Replace(string(b), `"target":"orders"`, `"target":"ordres"`, 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	if got := read(""); got.Verified != 2 || !strings.Contains(got.Break, "line 3") {
		t.Errorf("after an edit of record 3: verified %d, break %q", got.Verified, got.Break)
	}
}
