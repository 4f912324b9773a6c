package host_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/nubo-dev/nubo/internal/host"
	"github.com/nubo-dev/nubo/internal/spec"
)

// part is a component that records what happens to it in a shared journal.
// These are plain Go values, not mocks of anything: the host's contract is
// the order of calls, which is what they record.
type part struct {
	name       string
	journal    *[]string
	failStart  bool
	failPrep   bool
	failCommit bool
	reloads    bool
}

func (p *part) Name() string { return p.name }

func (p *part) Start(context.Context) error {
	if p.failStart {
		*p.journal = append(*p.journal, "fail-start "+p.name)
		return errors.New("port taken")
	}
	*p.journal = append(*p.journal, "start "+p.name)
	return nil
}

func (p *part) Stop(context.Context) error {
	*p.journal = append(*p.journal, "stop "+p.name)
	return nil
}

type reloading struct{ *part }

func (p reloading) Prepare(_ context.Context, next *spec.App) (host.Change, error) {
	if p.failPrep {
		*p.journal = append(*p.journal, "fail-prepare "+p.name)
		return nil, errors.New("bad route")
	}
	*p.journal = append(*p.journal, "prepare "+p.name+" "+next.Name)
	return change{p.part}, nil
}

type change struct{ p *part }

func (c change) Commit(context.Context) error {
	if c.p.failCommit {
		*c.p.journal = append(*c.p.journal, "fail-commit "+c.p.name)
		return errors.New("port taken")
	}
	*c.p.journal = append(*c.p.journal, "commit "+c.p.name)
	return nil
}

func (c change) Abort(context.Context) { *c.p.journal = append(*c.p.journal, "abort "+c.p.name) }

func build(journal *[]string, parts ...*part) []host.Component {
	var out []host.Component
	for _, p := range parts {
		p.journal = journal
		if p.reloads {
			out = append(out, reloading{p})
		} else {
			out = append(out, p)
		}
	}
	return out
}

func TestStartInOrderStopInReverse(t *testing.T) {
	var j []string
	h := host.New(nil, 0, build(&j, &part{name: "a"}, &part{name: "b"}, &part{name: "c"})...)
	if err := h.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := h.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := h.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	want := []string{"start a", "start b", "start c", "stop c", "stop b", "stop a"}
	if !slices.Equal(j, want) {
		t.Errorf("journal %q, want %q", j, want)
	}
}

func TestFailedStartRollsBackInReverse(t *testing.T) {
	var j []string
	h := host.New(nil, 0, build(&j, &part{name: "a"}, &part{name: "b"}, &part{name: "c", failStart: true}, &part{name: "d"})...)
	err := h.Start(context.Background())
	var se *host.StartError
	if !errors.As(err, &se) || se.Component != "c" || !strings.Contains(err.Error(), "c: port taken") {
		t.Fatalf("error %v, want a StartError naming c", err)
	}
	want := []string{"start a", "start b", "fail-start c", "stop b", "stop a"}
	if !slices.Equal(j, want) {
		t.Errorf("journal %q, want %q", j, want)
	}
	if err := h.Stop(context.Background()); err != nil || len(j) != len(want) {
		t.Errorf("a stop after a failed start stopped something again: %v %q", err, j)
	}
}

func TestReloadPreparesAllThenCommitsAll(t *testing.T) {
	var j []string
	h := host.New(nil, 0, build(&j, &part{name: "a", reloads: true}, &part{name: "b"}, &part{name: "c", reloads: true})...)
	if err := h.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	j = nil
	changed, err := h.Reload(context.Background(), &spec.App{Name: "v2"})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"prepare a v2", "prepare c v2", "commit a", "commit c"}
	if !slices.Equal(j, want) || !slices.Equal(changed, []string{"a", "c"}) {
		t.Errorf("journal %q changed %q, want %q", j, changed, want)
	}
}

func TestFailedPrepareAbortsEveryPreparedChange(t *testing.T) {
	var j []string
	h := host.New(nil, 0, build(&j, &part{name: "a", reloads: true}, &part{name: "b", reloads: true}, &part{name: "c", reloads: true, failPrep: true})...)
	if err := h.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	j = nil
	_, err := h.Reload(context.Background(), &spec.App{Name: "v2"})
	var re *host.ReloadError
	if !errors.As(err, &re) || re.Component != "c" || re.DuringCommit {
		t.Fatalf("error %v, want an uncommitted ReloadError naming c", err)
	}
	want := []string{"prepare a v2", "prepare b v2", "fail-prepare c", "abort b", "abort a"}
	if !slices.Equal(j, want) {
		t.Errorf("journal %q, want %q", j, want)
	}
}

func TestFailedCommitAbortsTheRest(t *testing.T) {
	var j []string
	h := host.New(nil, 0, build(&j, &part{name: "a", reloads: true}, &part{name: "b", reloads: true, failCommit: true}, &part{name: "c", reloads: true})...)
	if err := h.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	j = nil
	changed, err := h.Reload(context.Background(), &spec.App{Name: "v2"})
	var re *host.ReloadError
	if !errors.As(err, &re) || re.Component != "b" || !re.DuringCommit || !slices.Equal(changed, []string{"a"}) {
		t.Fatalf("error %v changed %q, want a committed ReloadError naming b after a", err, changed)
	}
	want := []string{"prepare a v2", "prepare b v2", "prepare c v2", "commit a", "fail-commit b", "abort c"}
	if !slices.Equal(j, want) {
		t.Errorf("journal %q, want %q", j, want)
	}
}

func TestReloadAfterStopIsRefused(t *testing.T) {
	var j []string
	h := host.New(nil, 0, build(&j, &part{name: "a", reloads: true})...)
	if err := h.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	_ = h.Stop(context.Background())
	if _, err := h.Reload(context.Background(), &spec.App{}); err == nil {
		t.Error("a reload after stop was accepted")
	}
}
