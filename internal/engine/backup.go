package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime/debug"
	"sync"
	"time"

	"github.com/nubo-dev/nubo/internal/audit"
	"github.com/nubo-dev/nubo/internal/backup"
	"github.com/nubo-dev/nubo/internal/console"
	"github.com/nubo-dev/nubo/internal/secrets"
)

// BackupContentType is the media type of POST /admin/v1/backup's answer:
// a zstd-compressed tar whose last entry is the manifest.
const BackupContentType = "application/vnd.nubo.backup+zstd"

// backupTmp is where parts are spooled while an archive is written; on the
// state directory's disk, beside the data it copies.
const backupTmp = ".backup-tmp"

// backups answers POST /admin/v1/backup: one archive of the running
// system, streamed, one at a time.
type backups struct {
	e       *Engine
	running sync.Mutex
}

func (b *backups) routes() []console.Route {
	return []console.Route{{Pattern: "POST /admin/v1/backup", Handler: http.HandlerFunc(b.serve)}}
}

// sources are the parts of the running system that keep state (an error
// before the answer begins when one cannot be backed up), in the order
// they are written: the broker's streams first (the events, the
// event store, KV), then the metrics, the databases, and the files that
// are copied as they are (the local CA, the secrets store, still
// encrypted, and the audit trail).
func (b *backups) sources() ([]backup.Source, error) {
	e := b.e
	var out []backup.Source
	if e.broker.b.Embedded() {
		out = append(out, e.broker.b)
	}
	out = append(out, metricsPart{e.obs})
	for _, name := range e.dbs.d.Names() {
		db := e.dbs.d.Get(name)
		if f := db.Failure(); f != "" {
			return nil, fmt.Errorf("database %s has failed (%s): it cannot be backed up", name, f)
		}
		select {
		case <-db.Ready():
		default:
			return nil, fmt.Errorf("database %s is not ready yet: try again once nubo status shows it ready", name)
		}
		out = append(out, db)
	}
	app, _ := e.current()
	return append(out, filesPart{state: app.StatePath(), trail: e.audit.trail}), nil
}

func (b *backups) serve(w http.ResponseWriter, r *http.Request) {
	if !b.running.TryLock() {
		writeAdminError(w, http.StatusConflict, "a backup is already running")
		return
	}
	defer b.running.Unlock()
	e := b.e
	app, _ := e.current()
	actor := r.Header.Get(audit.ActorHeader)
	if actor == "" {
		actor = "api"
	}
	rec := audit.Record{Actor: actor, Action: "backup"}
	sources, err := b.sources()
	if err != nil {
		_, _ = e.audit.Append(rec, err)
		writeAdminError(w, http.StatusServiceUnavailable, "backup: "+err.Error())
		return
	}
	w.Header().Set("Content-Type", BackupContentType)
	w.Header().Set("Content-Disposition", `attachment; filename="`+app.Name+`.nubo-backup"`)
	info := backup.Info{Version: nuboVersion(), System: app.Name, SpecDigest: specDigest(app)}
	cw := &countWriter{w: w}
	m, err := backup.Take(r.Context(), cw, filepath.Join(app.StatePath(), backupTmp), info, sources)
	files := 0
	for _, p := range m.Parts {
		files += len(p.Files)
	}
	rec.Detail = fmt.Sprintf("snapshot %s, %d parts, %d files, %d bytes", m.Time.Format(time.RFC3339Nano), len(m.Parts), files, cw.n)
	_, _ = e.audit.Append(rec, err)
	if err != nil {
		e.log.Error("backup failed", "err", err)
		e.out.event("", "backup failed: "+err.Error())
		// The answer has begun: only a cut connection tells the client
		// that the archive is not whole (it also lacks its manifest).
		panic(http.ErrAbortHandler)
	}
	e.out.event("", "backup taken: "+rec.Detail)
}

// writeAdminError answers as the admin API does: {"error": msg}.
func writeAdminError(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": msg})
}

// countWriter counts what the archive wrote.
type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// metricsPart is the metrics store's TSDB snapshot, where the store opens
// its folder when it next starts.
type metricsPart struct{ o *observability }

func (metricsPart) BackupName() string { return "metrics" }

func (p metricsPart) BackupPart(_ context.Context, w *backup.Writer) error {
	tmp, err := w.TempDir()
	if err != nil {
		return err
	}
	dir := filepath.Join(tmp, "tsdb")
	if err := p.o.metrics.Snapshot(dir); err != nil {
		return err
	}
	// The write-ahead log goes too: the snapshot holds the head's samples
	// as a block.
	w.Replaces("metrics")
	return w.Dir("metrics", dir)
}

// filesPart is the state that is copied as it is on disk: the local CA,
// the secrets store (age-encrypted to an identity outside the state
// directory, which the archive does not hold) and the audit trail.
type filesPart struct {
	state string
	trail *audit.Trail
}

func (filesPart) BackupName() string { return "files" }

func (p filesPart) BackupPart(_ context.Context, w *backup.Writer) error {
	ca := filepath.Join(p.state, "ca")
	if _, err := os.Stat(ca); err == nil {
		w.Replaces("ca")
		if err := w.Dir("ca", ca); err != nil {
			return err
		}
	}
	store := filepath.Join(p.state, secrets.StoreFile)
	if _, err := os.Stat(store); err == nil {
		w.Replaces(secrets.StoreFile)
		if err := w.File(secrets.StoreFile, store); err != nil {
			return err
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return err
	}
	trail, anchor, err := p.trail.Export()
	if err != nil {
		return err
	}
	w.Replaces(audit.File, audit.AnchorFile)
	for _, f := range []struct {
		name string
		data []byte
	}{{audit.File, trail}, {audit.AnchorFile, anchor}} {
		name, data := f.name, f.data
		if data == nil {
			continue
		}
		if err := w.Stream(name, func(out io.Writer) error {
			_, err := out.Write(data)
			return err
		}); err != nil {
			return err
		}
	}
	return nil
}

// nuboVersion is the version the Go toolchain stamped into the binary.
func nuboVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		return bi.Main.Version
	}
	return "unknown"
}
