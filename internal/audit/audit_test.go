package audit

import (
	"errors"
	"os"
	"strings"
	"sync"
	"testing"
)

func TestChainAndVerify(t *testing.T) {
	tr := Open(t.TempDir())
	if n, err := tr.Verify(); n != 0 || err != nil {
		t.Fatalf("an empty trail: %d %v", n, err)
	}
	// Appends from many goroutines (as the engine and the CLI at once)
	// make one chain.
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var err error
			if i%5 == 0 {
				err = errors.New("no such service")
			}
			if _, aerr := tr.Append(Record{Actor: "cli:test", Action: "restart", Target: "users"}, err); aerr != nil {
				t.Error(aerr)
			}
		}()
	}
	wg.Wait()
	if n, err := tr.Verify(); n != 20 || err != nil {
		t.Fatalf("verify: %d %v", n, err)
	}
	failed, _ := tr.Read(Query{Action: "restart"})
	nFailed := 0
	for _, r := range failed {
		if r.Result == Failed {
			nFailed++
			if r.Error != "no such service" {
				t.Errorf("a failed record: %+v", r)
			}
		}
	}
	if len(failed) != 20 || nFailed != 4 {
		t.Errorf("%d records, %d failed; want 20 and 4", len(failed), nFailed)
	}

	data, _ := os.ReadFile(tr.Path())
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	// A record edited on disk.
	edited := append([]string(nil), lines...)
	edited[7] = strings.Replace(edited[7], `"target":"users"`, `"target":"orders"`, 1)
	os.WriteFile(tr.Path(), []byte(strings.Join(edited, "\n")+"\n"), 0o600)
	var be *BreakError
	if n, err := tr.Verify(); !errors.As(err, &be) || be.Line != 8 || n != 7 || !strings.Contains(err.Error(), "changed") {
		t.Errorf("an edited record: %d %v", n, err)
	}
	// A record removed.
	removed := append(append([]string(nil), lines[:3]...), lines[4:]...)
	os.WriteFile(tr.Path(), []byte(strings.Join(removed, "\n")+"\n"), 0o600)
	if _, err := tr.Verify(); !errors.As(err, &be) || be.Line != 4 {
		t.Errorf("a removed record: %v", err)
	}
}
