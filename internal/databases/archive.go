package databases

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"

	"github.com/nubo-dev/nubo/internal/backup"
)

// pendingRestore is the file in a database's folder that a restored
// system backup leaves: the database applies it when it next starts, into
// the cluster it has just created.
func (db *Database) pendingRestore() string { return "restore" + db.backupExt() }

// BackupName implements backup.Source.
func (db *Database) BackupName() string { return "database:" + db.name }

// BackupPart implements backup.Source: the database's own dump (pg_dump's
// custom format, a Redis snapshot), placed where the database looks for a
// restore when it next starts. Restoring replaces the database's folder:
// the next start creates a new cluster and loads the dump into it, with
// the passwords of the secrets store restored beside it.
func (db *Database) BackupPart(ctx context.Context, w *backup.Writer) error {
	db.opMu.Lock()
	defer db.opMu.Unlock()
	if !db.isReady() {
		return fmt.Errorf("database %q: not ready: %s", db.name, db.Failure())
	}
	tmp, err := w.TempDir()
	if err != nil {
		return err
	}
	file := filepath.Join(tmp, db.pendingRestore())
	if err := db.dump(ctx, file); err != nil {
		return fmt.Errorf("database %q: %w", db.name, err)
	}
	folder := path.Join("databases", db.name)
	w.Replaces(folder)
	return w.File(path.Join(folder, db.pendingRestore()), file)
}

// applyPendingRestore loads a restored system backup's dump, if the
// database's folder holds one, and removes it once it is in.
func (db *Database) applyPendingRestore(ctx context.Context) error {
	file := filepath.Join(db.dir, db.pendingRestore())
	if _, err := os.Stat(file); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	db.opMu.Lock()
	defer db.opMu.Unlock()
	var err error
	if db.spec.Type == "redis" {
		err = db.restoreRedis(ctx, file)
	} else {
		err = db.restorePostgres(ctx, file)
	}
	if err != nil {
		return fmt.Errorf("restore the system backup's dump %s: %w", file, err)
	}
	db.notify(fmt.Sprintf("database %s: loaded the restored backup", db.name))
	return os.Remove(file)
}
