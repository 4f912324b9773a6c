package engine

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/nubo-dev/nubo/internal/mesh"
	"github.com/nubo-dev/nubo/internal/spec"
)

// debounce merges the bursts of events one save makes (editors write, rename
// and chmod) into one reaction.
const debounce = 300 * time.Millisecond

// readyTimeout bounds how long a reload waits for a changed service's new
// replicas before giving up and keeping the old ones.
const readyTimeout = 2 * time.Minute

// startWatchers watches the spec's files (reload on change) and every
// service's watch paths (rebuild and roll on change).
func (e *Engine) startWatchers(ctx context.Context) {
	e.mu.Lock()
	files := e.app.Files()
	runs := make([]*serviceRun, 0, len(e.services))
	for _, r := range e.services {
		runs = append(runs, r)
	}
	e.mu.Unlock()
	e.watch(ctx, "spec", files, func(ctx context.Context) { e.reload(ctx) })
	for _, r := range runs {
		e.watchService(ctx, r)
	}
}

// watchService rebuilds and rolls r when one of its watch paths changes.
func (e *Engine) watchService(parent context.Context, r *serviceRun) {
	if len(r.spec.Watch) == 0 {
		return
	}
	e.mu.Lock()
	app := e.app
	e.mu.Unlock()
	var paths []string
	for _, p := range r.spec.Watch {
		if !filepath.IsAbs(p) {
			p = filepath.Join(r.cfg.Dir, p)
		}
		paths = append(paths, p)
	}
	ctx, cancel := context.WithCancel(parent)
	prev := r.stop
	r.stop = func() { cancel(); prev() }
	e.watch(ctx, r.name, paths, func(ctx context.Context) {
		if r.spec.Build != "" {
			e.out.event(r.name, fmt.Sprintf("%s changed: rebuilding", r.name))
			if err := runBuild(ctx, r.name, r.spec.Build, r.cfg.Dir, r.cfg.Env, func(l string) { e.out.buildLine(r.name, l) }, e.trackBuild); err != nil {
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

// watch calls react (never twice at once) after changes under paths settle.
// Directories are watched recursively; files through their folder, since
// editors replace a file by renaming another over it.
func (e *Engine) watch(ctx context.Context, what string, paths []string, react func(context.Context), ignore ...string) {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		e.out.event(what, fmt.Sprintf("cannot watch %s for changes: %v", what, err))
		return
	}
	files := map[string]bool{}
	for _, p := range paths {
		abs, _ := filepath.Abs(p)
		fi, err := os.Stat(abs)
		if err != nil {
			e.out.event(what, fmt.Sprintf("cannot watch %s: %v", p, err))
			continue
		}
		if !fi.IsDir() {
			files[abs] = true
			_ = w.Add(filepath.Dir(abs))
			continue
		}
		_ = filepath.WalkDir(abs, func(path string, d fs.DirEntry, err error) error {
			if err != nil || !d.IsDir() {
				return nil
			}
			if path != abs && skipDir(path, d.Name(), ignore) {
				return filepath.SkipDir
			}
			_ = w.Add(path)
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
				_ = w.Add(ev.Name)
			}
		}
		_, isFileWatch := files[ev.Name]
		return len(files) == 0 || isFileWatch || !anyParentIsFileDir(ev.Name, files)
	}
	e.bg.Add(1)
	go func() {
		defer e.bg.Done()
		defer w.Close()
		var timer <-chan time.Time
		for {
			select {
			case <-ctx.Done():
				return
			case ev, ok := <-w.Events:
				if !ok {
					return
				}
				if relevant(ev) {
					timer = time.After(debounce)
				}
			case err, ok := <-w.Errors:
				if !ok {
					return
				}
				e.log.Warn("watch", "what", what, "err", err)
			case <-timer:
				timer = nil
				react(ctx)
				// Drop what the reaction itself caused (build outputs).
				drain(w.Events)
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

// reload loads the spec again and applies only what changed. An invalid spec
// is reported and the running system kept.
func (e *Engine) reload(ctx context.Context) {
	e.mu.Lock()
	old := e.app
	e.mu.Unlock()
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
		return
	}
	vals, err := e.resolveSecrets(next)
	if err != nil {
		e.out.event("", fmt.Sprintf("%s changed but its secrets do not resolve; keeping the running system: %v", old.File, err))
		return
	}
	e.mu.Lock()
	m := e.mesh
	e.mu.Unlock()
	if err := m.Update(e.meshConfig(next)); err != nil {
		e.out.event("", fmt.Sprintf("%s changed but the mesh refuses it; keeping the running system: %v", old.File, err))
		return
	}
	e.mu.Lock()
	e.app, e.vals = next, vals
	obs := e.obs
	e.mu.Unlock()
	if err := e.reloadObservability(obs, next); err != nil {
		e.out.event("", fmt.Sprintf("%s: rules, channels or SLOs not reloaded: %v", old.File, err))
	}
	e.reloadFunctions(ctx, old, next)
	e.reloadGateway(next)
	e.reloadEvents(ctx, old, next)

	names := map[string]bool{}
	for n := range old.Services {
		names[n] = true
	}
	for n := range next.Services {
		names[n] = true
	}
	changed := 0
	for _, name := range depOrder(next, keys(names)) {
		if e.reloadService(ctx, old, next, name) {
			changed++
		}
	}
	if changed == 0 {
		e.out.event("", fmt.Sprintf("%s reloaded: no service changed", old.File))
	}
}

// reloadService applies the change of one service and reports whether there
// was one.
func (e *Engine) reloadService(ctx context.Context, old, next *spec.App, name string) bool {
	e.mu.Lock()
	cur := e.services[name]
	e.mu.Unlock()
	ns := next.Services[name]
	if ns == nil || ns.Run == "" {
		if cur == nil {
			return false
		}
		e.out.event(name, fmt.Sprintf("%s removed from the spec: stopping it", name))
		e.mu.Lock()
		delete(e.services, name)
		e.mu.Unlock()
		stopCtx, cancel := context.WithTimeout(ctx, cur.cfg.StopGracePeriod+10*time.Second)
		defer cancel()
		if err := e.stopRun(stopCtx, cur); err != nil {
			e.out.event(name, err.Error())
		}
		if m := e.meshOf(); m != nil {
			if err := m.RemoveCaller(stopCtx, name); err != nil {
				e.out.event(name, err.Error())
			}
		}
		return true
	}
	if cur != nil {
		cfg, specEnv, err := e.serviceConfig(next, name, ns)
		if err != nil {
			e.out.event(name, fmt.Sprintf("%s: %v; keeping the running replicas", name, err))
			return false
		}
		curCmp, cfgCmp := cur.cfg, cfg
		curCmp.Env, cfgCmp.Env = cur.specEnv, specEnv
		sameRun := reflect.DeepEqual(curCmp, cfgCmp) && cur.spec.Build == ns.Build &&
			slices.Equal(cur.spec.Watch, ns.Watch) && reflect.DeepEqual(cur.spec.Scaling, ns.Scaling) &&
			reflect.DeepEqual(cur.spec.Resources, ns.Resources) && slices.Equal(cur.spec.DependsOn, ns.DependsOn)
		if sameRun {
			cur.spec = ns
			return false
		}
		onlyReplicas := cfg.Replicas != cur.cfg.Replicas && ns.Scaling == nil && cur.spec.Scaling == nil
		if onlyReplicas {
			c := curCmp
			c.Replicas = cfg.Replicas
			if reflect.DeepEqual(c, cfgCmp) && cur.spec.Build == ns.Build && slices.Equal(cur.spec.Watch, ns.Watch) {
				e.out.event(name, fmt.Sprintf("scaling %s: %d -> %d replicas", name, cur.cfg.Replicas, cfg.Replicas))
				if err := cur.sup.Scale(ctx, cfg.Replicas); err != nil {
					e.out.event(name, fmt.Sprintf("scale of %s failed: %v", name, err))
				}
				cur.cfg, cur.specEnv, cur.spec = cfg, specEnv, ns
				return true
			}
		}
	}
	// New or changed: build and start the new version; a changed service's
	// old replicas stop once the new ones are ready.
	if cur != nil {
		e.out.event(name, fmt.Sprintf("%s changed: starting the new version", name))
	} else {
		e.out.event(name, fmt.Sprintf("%s added to the spec: starting it", name))
	}
	runs, err := e.prepareServices(ctx, next, []string{name})
	if err != nil {
		e.out.event(name, fmt.Sprintf("%v; keeping the running version", err))
		return true
	}
	r := runs[0]
	e.launch(ctx, r)
	if cur == nil {
		e.mu.Lock()
		e.services[name] = r
		e.mu.Unlock()
		e.watchService(ctx, r)
		return true
	}
	readyCtx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	select {
	case <-r.ready:
	case <-readyCtx.Done():
		e.out.event(name, fmt.Sprintf("the new version of %s did not become ready in %s; keeping the old one", name, readyTimeout))
		stopCtx, c2 := context.WithTimeout(context.WithoutCancel(ctx), r.cfg.StopGracePeriod+10*time.Second)
		defer c2()
		_ = e.stopRun(stopCtx, r)
		return true
	}
	e.mu.Lock()
	e.services[name] = r
	e.mu.Unlock()
	e.watchService(ctx, r)
	stopCtx, c3 := context.WithTimeout(context.WithoutCancel(ctx), cur.cfg.StopGracePeriod+10*time.Second)
	defer c3()
	if err := e.stopRun(stopCtx, cur); err != nil {
		e.out.event(name, err.Error())
	}
	return true
}

func (e *Engine) meshOf() *mesh.Mesh {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.mesh
}
