package logs

import (
	"fmt"
	"strings"
	"testing"
)

// TestBoundedByBytes: a process printing without newlines (lines of
// 64 KiB, as the supervisor cuts them) keeps at most ServiceBytes, split
// into marked pieces; many such services keep at most TotalBytes, and the
// newest text is always there.
func TestBoundedByBytes(t *testing.T) {
	s := New(0)
	chunk := strings.Repeat("x", 64<<10)
	for i := range 1000 { // 64 MiB into one service
		s.Add(Line{Service: "noisy", Text: fmt.Sprintf("%06d", i) + chunk})
	}
	if s.rings["noisy"].bytes > ServiceBytes || s.bytes > ServiceBytes {
		t.Fatalf("one service keeps %d bytes, over %d", s.rings["noisy"].bytes, ServiceBytes)
	}
	lines := s.Get(Query{Service: "noisy"})
	if len(lines) == 0 {
		t.Fatal("nothing kept")
	}
	for _, l := range lines {
		if len(l.Text) > MaxLineBytes+len(ContinuationMark) {
			t.Fatalf("a line of %d bytes was kept whole", len(l.Text))
		}
	}
	last := lines[len(lines)-1]
	if !strings.HasPrefix(last.Text, ContinuationMark) {
		t.Errorf("the last piece of a split line has no mark: %.20q", last.Text)
	}
	// The newest line's first piece is among the kept ones.
	found := false
	for _, l := range lines {
		if strings.HasPrefix(l.Text, "000999") {
			found = true
		}
	}
	if !found {
		t.Error("the newest line was dropped")
	}

	for i := range 20 { // 20 services of 16 MiB each
		svc := fmt.Sprintf("svc-%d", i)
		for range 260 {
			s.Add(Line{Service: svc, Text: chunk})
		}
	}
	if s.bytes > TotalBytes {
		t.Errorf("the store keeps %d bytes, over %d", s.bytes, TotalBytes)
	}
	sum := 0
	for _, r := range s.rings {
		sum += r.bytes
	}
	if sum != s.bytes {
		t.Errorf("the store counts %d bytes, its rings %d", s.bytes, sum)
	}
	if got := s.Get(Query{Service: "svc-19", Tail: 1}); len(got) != 1 {
		t.Error("the newest service's last line is gone")
	}
}

// TestSplitKeepsRunes: a line is split at a rune boundary.
func TestSplitKeepsRunes(t *testing.T) {
	s := New(0)
	text := strings.Repeat("é", MaxLineBytes) // 2 bytes each
	s.Add(Line{Service: "u", Text: text})
	var joined strings.Builder
	for i, l := range s.Get(Query{}) {
		if i > 0 {
			l.Text = strings.TrimPrefix(l.Text, ContinuationMark)
		}
		joined.WriteString(l.Text)
	}
	if joined.String() != text {
		t.Error("the pieces do not make the line again")
	}
}
