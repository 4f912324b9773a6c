package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nubo-dev/nubo/internal/apitype"
	"github.com/nubo-dev/nubo/internal/audit"
	"github.com/nubo-dev/nubo/internal/nubotest"
)

// TestAuditTrail: a restart and a publish from the CLI and a secret set are
// recorded once each with who and the result, a secret's value never is, a
// service's own call to the platform API is not a change, and an edited
// record is found by audit verify.
func TestAuditTrail(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "nubo.yaml", "name: audited\nsecrets:\n  api: {keys: [TOKEN]}\nservices:\n  idle: {run: sleep 600}\nqueues:\n  jobs: {}\nlocal: {console: \"127.0.0.1:0\"}\n")
	state := filepath.Join(dir, "state")
	home := filepath.Join(dir, "home") // the secrets store's identity lives under HOME
	env := append(os.Environ(), "HOME="+home, "TOKEN=from-env")
	run := func(stdin string, args ...string) result {
		t.Helper()
		cmd := exec.Command(nuboBin, append([]string{"--state", state}, args...)...)
		cmd.Dir, cmd.Env = dir, env
		var stdout, stderr bytes.Buffer
		cmd.Stdin, cmd.Stdout, cmd.Stderr = strings.NewReader(stdin), &stdout, &stderr
		_ = cmd.Run()
		return result{code: cmd.ProcessState.ExitCode(), stdout: stdout.String(), stderr: stderr.String()}
	}
	if r := run("s3cret-value\n", "secret", "set", "api", "TOKEN"); r.code != 0 {
		t.Fatalf("secret set: %s", r)
	}
	startUp(t, dir, env, "--state", state)
	var st apitype.Status
	nubotest.WaitFor(t, 60*time.Second, func() error {
		r := run("", "status", "-o", "json")
		if r.code != 0 {
			return fmt.Errorf("%s", r)
		}
		if err := json.Unmarshal([]byte(r.stdout), &st); err != nil {
			return err
		}
		if len(st.Services) != 1 || st.Services[0].Ready != 1 {
			return fmt.Errorf("idle not ready yet")
		}
		return nil
	})
	if r := run("", "restart", "idle"); r.code != 0 {
		t.Fatalf("restart: %s", r)
	}
	if r := run("", "restart", "nope"); r.code == 0 {
		t.Fatalf("restart of an unknown service succeeded: %s", r)
	}
	if r := run("", "scale", "idle", "2"); r.code != 0 {
		t.Fatalf("scale: %s", r)
	}
	nubotest.WaitFor(t, 60*time.Second, func() error {
		var s apitype.Status
		r := run("", "status", "-o", "json")
		if err := json.Unmarshal([]byte(r.stdout), &s); err != nil {
			return err
		}
		if len(s.Services) != 1 || s.Services[0].Ready != 2 {
			return fmt.Errorf("not 2 ready replicas yet: %+v", s.Services)
		}
		return nil
	})
	if r := run(`{"n":1}`, "publish", "queue", "jobs", "--type", "t", "--data", "-"); r.code != 0 {
		t.Fatalf("publish: %s", r)
	}
	// A service's own call names no actor: not a change to audit.
	resp, err := http.Post("http://"+st.Console+"/v1/queues/jobs", "application/cloudevents+json",
		strings.NewReader(`{"specversion":"1.0","id":"x","source":"svc","type":"t"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()

	r := run("", "audit", "-o", "json")
	var recs []audit.Record
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &recs) != nil {
		t.Fatalf("audit: %s", r)
	}
	var got []string
	for _, rec := range recs {
		got = append(got, rec.Action+" "+rec.Target+" "+rec.Result)
		if !strings.HasPrefix(rec.Actor, "cli:") {
			t.Errorf("record %d: actor %q", rec.Seq, rec.Actor)
		}
	}
	want := []string{"secret-set api TOKEN ok", "restart idle ok", "restart nope failed", "scale idle ok", "publish queue:jobs ok"}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("records:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	trail, _ := os.ReadFile(filepath.Join(state, audit.File))
	if strings.Contains(string(trail), "s3cret-value") {
		t.Error("a secret's value is in the audit trail")
	}
	if r := run("", "audit", "verify"); r.code != 0 || !strings.Contains(r.stdout, "5 records, the chain holds") {
		t.Errorf("verify: %s", r)
	}
	edited := strings.Replace(string(trail), `"target":"idle"`, `"target":"other"`, 1)
	if err := os.WriteFile(filepath.Join(state, audit.File), []byte(edited), 0o600); err != nil {
		t.Fatal(err)
	}
	if r := run("", "audit", "verify"); r.code == 0 || !strings.Contains(r.stderr, "line 2 (record 2)") {
		t.Errorf("verify of an edited trail: %s", r)
	}
}
