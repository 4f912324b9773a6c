package engine

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/nubo-dev/nubo/internal/audit"
	"github.com/nubo-dev/nubo/internal/host"
	"github.com/nubo-dev/nubo/internal/secrets"
	"github.com/nubo-dev/nubo/internal/spec"
)

// debounce merges the bursts of events one save makes (editors write, rename
// and chmod) into one reaction.
const debounce = 300 * time.Millisecond

// watchSpec reloads the spec when one of its files changes.
func (e *Engine) watchSpec(ctx context.Context) {
	app, _ := e.current()
	w := watcher{out: e.out, log: e.log, bg: &e.bg}
	w.watch(ctx, "spec", app.Files(), func(ctx context.Context) { e.reload(ctx) })
}

// watchAll watches every running service's watch paths.
func (c *servicesComponent) watchAll() {
	for _, r := range c.list() {
		c.watch(r)
	}
}

// watch rebuilds and rolls r when one of its watch paths changes, until r
// stops.
func (c *servicesComponent) watch(r *serviceRun) {
	if len(r.spec.Watch) == 0 || c.e.opts.NoWatch {
		return
	}
	c.mu.Lock()
	app := c.app
	c.mu.Unlock()
	var paths []string
	for _, p := range r.spec.Watch {
		if !filepath.IsAbs(p) {
			p = filepath.Join(r.cfg.Dir, p)
		}
		paths = append(paths, p)
	}
	ctx, cancel := context.WithCancel(c.ctx)
	prev := r.stop
	r.stop = func() { cancel(); prev() }
	e := c.e
	w := watcher{out: e.out, log: e.log, bg: &c.bg}
	w.watch(ctx, r.name, paths, func(ctx context.Context) {
		// A reload may update the run's spec meanwhile (a scale).
		c.mu.Lock()
		build, dir, env := r.spec.Build, r.cfg.Dir, r.cfg.Env
		c.mu.Unlock()
		if build != "" {
			e.out.event(r.name, fmt.Sprintf("%s changed: rebuilding", r.name))
			if err := runBuild(ctx, fmt.Sprintf("service %q", r.name), build, dir, env, func(l string) { e.out.buildLine(r.name, l) }, e.trackBuild); err != nil {
				e.metrics.builds.WithLabelValues(r.name, "failure").Inc()
				e.out.event(r.name, fmt.Sprintf("%v; keeping the running replicas", err))
				return
			}
			e.metrics.builds.WithLabelValues(r.name, "success").Inc()
		}
		e.out.event(r.name, fmt.Sprintf("rolling %s", r.name))
		if err := r.sup.Roll(ctx); err != nil && ctx.Err() == nil {
			e.out.event(r.name, fmt.Sprintf("roll of %s failed: %v", r.name, err))
		}
	}, app.StatePath())
}

// watcher runs file watches whose goroutines bg counts.
type watcher struct {
	out *output
	log *slog.Logger
	bg  *sync.WaitGroup
}

// watch calls react (never twice at once) after changes under paths settle.
// Directories are watched recursively; files through their folder, since
// editors replace a file by renaming another over it.
func (w watcher) watch(ctx context.Context, what string, paths []string, react func(context.Context), ignore ...string) {
	fw, err := fsnotify.NewWatcher()
	if err != nil {
		w.out.event(what, fmt.Sprintf("cannot watch %s for changes: %v", what, err))
		return
	}
	files := map[string]bool{}
	for _, p := range paths {
		abs, _ := filepath.Abs(p)
		fi, err := os.Stat(abs)
		if err != nil {
			w.out.event(what, fmt.Sprintf("cannot watch %s: %v", p, err))
			continue
		}
		if !fi.IsDir() {
			files[abs] = true
			_ = fw.Add(filepath.Dir(abs))
			continue
		}
		_ = filepath.WalkDir(abs, func(path string, d fs.DirEntry, err error) error {
			if err != nil || !d.IsDir() {
				return nil
			}
			if path != abs && skipDir(path, d.Name(), ignore) {
				return filepath.SkipDir
			}
			_ = fw.Add(path)
			return nil
		})
	}
	relevant := func(ev fsnotify.Event) bool {
		if ev.Op == fsnotify.Chmod || noise(ev.Name) {
			return false
		}
		for _, ig := range ignore {
			if ig != "" && strings.HasPrefix(ev.Name, absPath(ig)) {
				return false
			}
		}
		if len(files) > 0 && files[ev.Name] {
			return true
		}
		// A new folder under a watched one is watched too.
		if ev.Op&fsnotify.Create != 0 {
			if fi, err := os.Stat(ev.Name); err == nil && fi.IsDir() && !skipDir(ev.Name, filepath.Base(ev.Name), ignore) {
				_ = fw.Add(ev.Name)
			}
		}
		_, isFileWatch := files[ev.Name]
		return len(files) == 0 || isFileWatch || !anyParentIsFileDir(ev.Name, files)
	}
	w.bg.Add(1)
	go func() {
		defer w.bg.Done()
		defer fw.Close()
		var timer <-chan time.Time
		for {
			select {
			case <-ctx.Done():
				return
			case ev, ok := <-fw.Events:
				if !ok {
					return
				}
				if relevant(ev) {
					timer = time.After(debounce)
				}
			case err, ok := <-fw.Errors:
				if !ok {
					return
				}
				w.log.Warn("watch", "what", what, "err", err)
			case <-timer:
				timer = nil
				react(ctx)
				// Drop what the reaction itself caused (build outputs).
				drain(fw.Events)
			}
		}
	}()
}

// anyParentIsFileDir reports whether name sits in a folder watched only for
// some files in it, in which case other files there are not ours.
func anyParentIsFileDir(name string, files map[string]bool) bool {
	dir := filepath.Dir(name)
	for f := range files {
		if filepath.Dir(f) == dir {
			return true
		}
	}
	return false
}

func drain(ch <-chan fsnotify.Event) {
	for {
		select {
		case <-ch:
		default:
			return
		}
	}
}

func absPath(p string) string {
	a, err := filepath.Abs(p)
	if err != nil {
		return p
	}
	return a
}

// skipDir leaves out folders no one means to watch.
func skipDir(path, name string, ignore []string) bool {
	switch name {
	case ".git", "node_modules", ".nubo", "bin", "__pycache__":
		return true
	}
	for _, ig := range ignore {
		if ig != "" && absPath(path) == absPath(ig) {
			return true
		}
	}
	return false
}

// noise is editors' temporary files.
func noise(name string) bool {
	base := filepath.Base(name)
	return strings.HasSuffix(base, "~") || strings.HasSuffix(base, ".swp") || strings.HasSuffix(base, ".swx") ||
		strings.HasPrefix(base, ".#") || base == "4913"
}

// reload loads the spec again and applies it in two phases: every
// component prepares the new spec, then all switch over. An invalid spec, or
// one a component refuses, is reported and the whole running system kept.
func (e *Engine) reload(ctx context.Context) {
	old, _ := e.current()
	next, err := spec.Load(old.File)
	if err != nil {
		e.out.event("", fmt.Sprintf("%s changed but does not load; keeping the running system:", old.File))
		var ds spec.Diagnostics
		if errors.As(err, &ds) {
			for _, d := range ds {
				e.out.event("", "  "+d.String())
			}
		} else {
			e.out.event("", "  "+err.Error())
		}
		_, _ = e.audit.Append(audit.Record{Actor: "engine:watch", Action: "reload", Target: old.File, Detail: "does not load"}, err)
		return
	}
	if e.opts.StateDir != "" {
		next.Local.StateDir = e.opts.StateDir
	}
	vals, err := e.resolveSecrets(next)
	if err != nil {
		e.out.event("", fmt.Sprintf("%s changed but its secrets do not resolve; keeping the running system: %v", old.File, err))
		_, _ = e.audit.Append(audit.Record{Actor: "engine:watch", Action: "reload", Target: old.File, Detail: "secrets do not resolve"}, err)
		return
	}
	if old.Gateway == nil && next.Gateway != nil {
		e.out.event("", "a gateway was added: restart nubo up to serve it")
	}
	e.mu.Lock()
	e.next, e.nextVals = next, vals
	e.mu.Unlock()
	changed, err := e.host.Reload(ctx, next)
	e.mu.Lock()
	e.next, e.nextVals = nil, nil
	var re *host.ReloadError
	if err == nil {
		e.app, e.vals = next, vals
	}
	e.mu.Unlock()
	detail := "spec " + specDigest(next)
	if len(changed) > 0 {
		detail += "; changed: " + strings.Join(changed, ", ")
	}
	if _, aerr := e.audit.Append(audit.Record{Actor: "engine:watch", Action: "reload", Target: old.File, Detail: detail}, err); aerr != nil {
		e.log.Error("audit: reload not recorded", "err", aerr)
	}
	switch {
	case errors.As(err, &re) && !re.DuringCommit:
		e.out.event("", fmt.Sprintf("%s changed but %s refuses it; keeping the running system: %v", old.File, re.Component, re.Err))
	case err != nil:
		e.out.event("", fmt.Sprintf("%s: reload incomplete: %v", old.File, err))
	case len(changed) == 0:
		e.out.event("", fmt.Sprintf("%s reloaded: nothing changed", old.File))
	default:
		e.out.event("", fmt.Sprintf("%s reloaded: %s", old.File, strings.Join(changed, ", ")))
	}
}

// compiling returns the spec a reload prepares and commits, with its
// secrets' values, or else the running one.
func (e *Engine) compiling() (*spec.App, secrets.Values) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.next != nil {
		return e.next, e.nextVals
	}
	return e.app, e.vals
}

// valuesFor returns the secrets' values of app: the running spec's, or
// during a reload the next spec's.
func (e *Engine) valuesFor(app *spec.App) secrets.Values {
	e.mu.Lock()
	defer e.mu.Unlock()
	if app == e.next {
		return e.nextVals
	}
	return e.vals
}
