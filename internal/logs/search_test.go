package logs

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestFindAcrossBlocks: records longer than the block a search reads at
// once, records split between two blocks, a torn last line and a field
// whose value is written with an exponent are all searched right.
func TestFindAcrossBlocks(t *testing.T) {
	dir := t.TempDir()
	d, err := OpenDisk(dir, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	at := time.Now()
	big := strings.Repeat("x", 3*scanBlock)
	var want int
	for i := range 20000 {
		l := Line{Time: at, Service: "api", Stream: "stdout", Level: "info", Text: "request " + strings.Repeat("y", i%300)}
		switch {
		case i%997 == 0:
			l.Level, l.Text = "error", "needle "+big[:i%(2*scanBlock)]
			want++
		case i == 5:
			l.Fields = map[string]any{"bytes": 1e21}
		}
		if err := d.Append(l); err != nil {
			t.Fatal(err)
		}
	}
	got, err := d.Find(Search{Level: "error", Grep: "needle"})
	if err != nil || len(got) != want {
		t.Fatalf("found %d, want %d: %v", len(got), want, err)
	}
	for i, l := range got {
		if l.Level != "error" || !strings.HasPrefix(l.Text, "needle") {
			t.Errorf("record %d: %.40q", i, l.Text)
		}
	}
	if got, err := d.Find(Search{Level: "error", Limit: 3}); err != nil || len(got) != 3 || got[2].Text != "needle "+big[:19940%(2*scanBlock)] {
		t.Errorf("the last 3 errors: %d, %v", len(got), err)
	}
	if got, _ := d.Find(Search{Where: map[string]string{"bytes": "1e+21"}}); len(got) != 1 {
		t.Errorf("a field written 1e+21 in JSON and by fmt: found %d", len(got))
	}
	// Reading in blocks (where files are not mapped) finds the same
	// lines as searching the whole file at once.
	files0, _ := filepath.Glob(filepath.Join(dir, "*.ndjson"))
	whole, err := os.ReadFile(files0[0])
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []Search{{Level: "error", Grep: "needle"}, {Level: "info"}, {}} {
		p := s.prefilter()
		f, err := os.Open(files0[0])
		if err != nil {
			t.Fatal(err)
		}
		blocks, err := p.scan(f)
		f.Close()
		all := p.lines(whole, 0, p.anchor(), nil)
		if err != nil || len(blocks) != len(all) || len(all) == 0 || blocks[len(blocks)-1] != all[len(all)-1] {
			t.Errorf("%+v: %d lines in blocks, %d at once, %v", s, len(blocks), len(all), err)
		}
	}
	// A torn last line (a crash mid-write) is skipped.
	files, _ := filepath.Glob(filepath.Join(dir, "*.ndjson"))
	f, err := os.OpenFile(files[0], os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(`{"time":"2026-12-08T00:00:00Z","service":"api","level":"error","text":"needle torn`)
	f.Close()
	if got, err := d.Find(Search{Level: "error", Grep: "needle"}); err != nil || len(got) != want {
		t.Errorf("with a torn line: %d, %v", len(got), err)
	}
}
