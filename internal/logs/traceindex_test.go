package logs

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestTraceIndex: a closed hour gets a trace index, which a search by
// trace id trusts (a record written behind the store's back into an
// indexed hour is not found) and does without when it is missing; the
// hour being written is searched by its hashes in memory; a restart
// within an hour drops that hour's index, so its new records are found.
func TestTraceIndex(t *testing.T) {
	dir := t.TempDir()
	d, err := OpenDisk(dir, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	h1 := time.Now().Add(-2 * time.Hour).Truncate(time.Hour).Add(time.Minute)
	h2 := h1.Add(time.Hour)
	add := func(d *Disk, at time.Time, trace, text string) {
		t.Helper()
		if err := d.Append(Line{Time: at, Service: "api", Stream: "stdout", Text: text, TraceID: trace}); err != nil {
			t.Fatal(err)
		}
	}
	find := func(d *Disk, trace string) []string {
		t.Helper()
		got, err := d.Find(Search{TraceID: trace})
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, l := range got {
			out = append(out, l.Text)
		}
		return out
	}
	add(d, h1, "aaaa", "a in hour 1")
	add(d, h2, "bbbb", "b in hour 2") // closes hour 1: its index is written
	hour1 := h1.UTC().Format(hourLayout)
	if _, err := os.Stat(filepath.Join(dir, hour1+bloomSuffix)); err != nil {
		t.Fatalf("no index of the closed hour: %v", err)
	}
	if got := find(d, "aaaa"); len(got) != 1 {
		t.Errorf("trace a: %q", got)
	}
	if got := find(d, "bbbb"); len(got) != 1 {
		t.Errorf("trace b, in the hour being written: %q", got)
	}

	// Behind the store's back: hour 1's index does not know trace c.
	f, err := os.OpenFile(filepath.Join(dir, hour1+".ndjson"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(f, `{"time":%q,"service":"api","replica":0,"stream":"stdout","text":"c in hour 1","seq":0,"traceId":"cccc"}`+"\n", h1.Format(time.RFC3339Nano))
	f.Close()
	if got := find(d, "cccc"); len(got) != 0 {
		t.Errorf("the index was not used: trace c found %q", got)
	}
	if err := os.Remove(filepath.Join(dir, hour1+bloomSuffix)); err != nil {
		t.Fatal(err)
	}
	if got := find(d, "cccc"); len(got) != 1 {
		t.Errorf("without its index hour 1 is read whole, yet trace c: %q", got)
	}

	// A restart within hour 2.
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	d2, err := OpenDisk(dir, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer d2.Close()
	add(d2, h2.Add(time.Second), "dddd", "d in hour 2, after the restart")
	if got := find(d2, "bbbb"); len(got) != 1 {
		t.Errorf("trace b after the restart: %q", got)
	}
	if got := find(d2, "dddd"); len(got) != 1 {
		t.Errorf("trace d: %q", got)
	}
	add(d2, h2.Add(time.Hour), "eeee", "e in hour 3") // closes hour 2, partial: no index
	if _, err := os.Stat(filepath.Join(dir, h2.UTC().Format(hourLayout)+bloomSuffix)); !os.IsNotExist(err) {
		t.Errorf("hour 2, written before and after a restart, has an index: %v", err)
	}
	if got := find(d2, "dddd"); len(got) != 1 {
		t.Errorf("trace d after its hour closed: %q", got)
	}
}

// TestBloomFalsePositives: 10 bits and 7 hashes per trace give about 1%
// false positives, and never a false negative.
func TestBloomFalsePositives(t *testing.T) {
	var in []uint64
	for i := range 100_000 {
		in = append(in, traceHash(fmt.Sprintf("%032x", i)))
	}
	b := newBloom(in)
	for _, h := range in {
		if !b.mayHave(h) {
			t.Fatalf("a false negative")
		}
	}
	fp := 0
	for i := range 100_000 {
		if b.mayHave(traceHash(fmt.Sprintf("x%031x", i))) {
			fp++
		}
	}
	if fp > 2000 {
		t.Errorf("%d false positives in 100,000, want about 1%%", fp)
	}
	rt, err := readBloom(writeTemp(t, b.marshal()))
	if err != nil || len(rt.bits) != len(b.bits) || !rt.mayHave(in[0]) {
		t.Errorf("round trip: %v", err)
	}
	if _, err := readBloom(writeTemp(t, []byte("nubolog-traces-1\x07\x00\x00\x00\x03\x00\x00\x00"))); err == nil {
		t.Errorf("a damaged index was read")
	}
}

func writeTemp(t *testing.T, b []byte) string {
	p := filepath.Join(t.TempDir(), "x"+bloomSuffix)
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}
