package logs

import (
	"fmt"
	"sync"
	"testing"
	"time"
)

func TestRingKeepsLastLines(t *testing.T) {
	s := New(3)
	for i := 1; i <= 5; i++ {
		s.Add(Line{Service: "a", Text: fmt.Sprint(i)})
		s.Add(Line{Service: "b", Text: fmt.Sprint(i)})
	}
	got := s.Get(Query{Service: "a"})
	if len(got) != 3 || got[0].Text != "3" || got[2].Text != "5" {
		t.Fatalf("got %+v", got)
	}
	all := s.Get(Query{})
	if len(all) != 6 {
		t.Fatalf("want 6 lines over both services, got %d", len(all))
	}
	for i := 1; i < len(all); i++ {
		if all[i].Seq <= all[i-1].Seq {
			t.Fatal("lines out of order")
		}
	}
	if tail := s.Get(Query{Tail: 2}); len(tail) != 2 || tail[1].Service != "b" || tail[1].Text != "5" {
		t.Errorf("tail = %+v", tail)
	}
}

func TestSinceAndAfter(t *testing.T) {
	s := New(0)
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range 10 {
		s.Add(Line{Service: "a", Time: base.Add(time.Duration(i) * time.Minute), Text: fmt.Sprint(i)})
	}
	if got := s.Get(Query{Since: base.Add(7 * time.Minute)}); len(got) != 3 || got[0].Text != "7" {
		t.Errorf("since: %+v", got)
	}
	if got := s.Get(Query{AfterSeq: 8}); len(got) != 2 || got[0].Text != "8" {
		t.Errorf("after: %+v", got)
	}
}

func TestWaitWakesFollowers(t *testing.T) {
	s := New(0)
	w := s.Wait()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		s.Add(Line{Service: "a", Text: "x"})
	}()
	select {
	case <-w:
	case <-time.After(10 * time.Second):
		t.Fatal("follower not woken")
	}
	wg.Wait()
}
