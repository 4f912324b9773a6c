package cli

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	agelib "filippo.io/age"

	"github.com/nubo-dev/nubo/internal/audit"
	"github.com/nubo-dev/nubo/internal/nubotest"
)

// nubo backup of a running nubo up, encrypted with age: the archive does
// not read without its key nor with another, reads with it (a passphrase,
// or an identity), and nubo restore puts it into another state folder,
// refusing the running engine's own folder and, without --yes, a folder
// that already holds data. Both ends are in the audit trail.
func TestBackupEncryptedAndRestore(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("NUBO_AGE_IDENTITY", filepath.Join(dir, "identity.txt"))
	writeFile(t, dir, "nubo.yaml", "name: bk\nqueues:\n  orders: {}\nlocal: {console: \"127.0.0.1:0\"}\n")
	state := filepath.Join(dir, "state")
	startUp(t, dir, nil, "--state", state)
	nubotest.WaitFor(t, 60*time.Second, func() error {
		if r := runBinary(t, dir, "--state", state, "publish", "queue", "orders", "--type", "Placed", "--data", `{"n":1}`); r.code != 0 {
			return fmt.Errorf("%s", r)
		}
		return nil
	})

	pass := filepath.Join(dir, "pass")
	writeFile(t, dir, "pass", "correct horse battery staple\n")
	writeFile(t, dir, "wrong", "another passphrase\n")
	r := runBinary(t, dir, "--state", state, "backup", "--out", "enc.nubo-backup", "--passphrase-file", pass)
	if r.code != 0 || !strings.Contains(r.stdout, "encrypted with age -> enc.nubo-backup") {
		t.Fatalf("backup: %s", r)
	}
	data, err := os.ReadFile(filepath.Join(dir, "enc.nubo-backup"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(data), "age-encryption.org/v1") || strings.Contains(string(data), "manifest.json") {
		t.Fatalf("the archive is not an age file (%q...)", data[:min(40, len(data))])
	}

	other := filepath.Join(dir, "other")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "encrypted with age: give --identity FILE or --passphrase-file FILE"},
		{[]string{"--passphrase-file", filepath.Join(dir, "wrong")}, "decrypt"},
	} {
		r := runBinary(t, dir, append([]string{"--state", other, "restore", "enc.nubo-backup"}, tc.args...)...)
		if r.code == 0 || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("restore %v: %s; want a failure with %q", tc.args, r, tc.want)
		}
	}
	if _, err := os.Stat(filepath.Join(other, "broker-restore")); !os.IsNotExist(err) {
		t.Fatalf("a refused restore wrote into the state folder: %v", err)
	}
	r = runBinary(t, dir, "--state", state, "restore", "enc.nubo-backup", "--passphrase-file", pass, "--yes")
	if r.code == 0 || !strings.Contains(r.stderr, "an engine is running on it") {
		t.Errorf("restore into the running engine's folder: %s; want a refusal", r)
	}
	r = runBinary(t, dir, "--state", other, "restore", "enc.nubo-backup", "--passphrase-file", pass)
	if r.code != 0 || !strings.Contains(r.stdout, "the next nubo up runs from it") {
		t.Fatalf("restore: %s", r)
	}
	if _, err := os.Stat(filepath.Join(other, "broker-restore", "nubo_bk_queue_orders.snap")); err != nil {
		t.Fatalf("the queue's snapshot is not in place: %v", err)
	}
	r = runBinary(t, dir, "--state", other, "restore", "enc.nubo-backup", "--passphrase-file", pass)
	if r.code == 0 || !strings.Contains(r.stderr, "already holds") || !strings.Contains(r.stderr, "--yes") {
		t.Errorf("a second restore: %s; want a refusal naming --yes", r)
	}
	r = runBinary(t, dir, "--state", other, "restore", "enc.nubo-backup", "--passphrase-file", pass, "--yes")
	if r.code != 0 || !strings.Contains(r.stdout, "what was there is in "+filepath.Join(other, "replaced-")) {
		t.Fatalf("restore --yes: %s", r)
	}
	// The trail it replaced, with the first restore and the refusal, is
	// kept aside.
	aside, _ := filepath.Glob(filepath.Join(other, "replaced-*"))
	if len(aside) != 1 {
		t.Fatalf("replaced folders: %v", aside)
	}
	recs, err := audit.Open(aside[0]).Read(audit.Query{Action: "restore"})
	if err != nil || len(recs) != 2 || recs[0].Result != audit.OK || recs[1].Result != audit.Failed {
		t.Errorf("restore records of the replaced trail = %+v, %v; want the first restore, then the refusal", recs, err)
	}

	// An age identity's recipient.
	id, err := agelib.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, dir, "key.txt", id.String()+"\n")
	r = runBinary(t, dir, "--state", state, "backup", "--out", "x.nubo-backup", "--recipient", id.Recipient().String())
	if r.code != 0 {
		t.Fatalf("backup --recipient: %s", r)
	}
	if r := runBinary(t, dir, "--state", filepath.Join(dir, "third"), "restore", "x.nubo-backup", "--identity", filepath.Join(dir, "key.txt")); r.code != 0 {
		t.Errorf("restore --identity: %s", r)
	}

	recs, err = audit.Open(state).Read(audit.Query{Action: "backup"})
	if err != nil || len(recs) != 2 || !strings.HasPrefix(recs[0].Actor, "cli:") {
		t.Errorf("backup records = %+v, %v; want two by the CLI", recs, err)
	}
	recs, err = audit.Open(other).Read(audit.Query{Action: "restore"})
	if err != nil || len(recs) != 1 || recs[0].Result != audit.OK || !strings.Contains(recs[0].Detail, "backup of bk") {
		t.Errorf("restore records in the restored folder = %+v, %v; want the last restore's", recs, err)
	}
}
