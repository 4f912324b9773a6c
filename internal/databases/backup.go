package databases

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"filippo.io/age"
	"github.com/jackc/pgx/v5"

	"github.com/nubo-dev/nubo/internal/apitype"
)

// A backup is one file in the database's backup folder, named
// NAME-20261207T031500.000Z.pgdump (pg_dump's custom format) or .rdb (a
// Redis snapshot), with .age added when it is encrypted. The name sorts by
// time, and the folder is the whole catalogue: no index to get out of step.
const (
	backupTime = "20060102T150405.000Z"
	ageSuffix  = ".age"
)

// ErrBackupNotFound is returned by Restore for a backup that does not
// exist.
var ErrBackupNotFound = errors.New("no such backup")

func (db *Database) backupExt() string {
	if db.spec.Type == "redis" {
		return ".rdb"
	}
	return ".pgdump"
}

// BackupDir is where backups go: backup.destination (relative to the
// spec's folder), else the database's folder's backups.
func (db *Database) BackupDir() string {
	d := db.spec.Backup.Destination
	switch {
	case d == "":
		return filepath.Join(db.dir, "backups")
	case filepath.IsAbs(d):
		return d
	}
	return filepath.Join(db.d.cfg.App.Dir, d)
}

// encryptionKey returns the passphrase backups are encrypted with, or ""
// when security.encryption.atRest is off.
func (db *Database) encryptionKey() (string, error) {
	enc := db.spec.Security.Encryption
	if !enc.AtRest {
		return "", nil
	}
	if enc.Key == nil {
		return "", fmt.Errorf("encryption.atRest needs encryption.key, the secret that holds the backups' key")
	}
	sec := db.d.cfg.App.Secrets[enc.Key.Secret]
	if sec == nil || len(sec.Keys) == 0 {
		return "", fmt.Errorf("encryption key: secret %q declares no key", enc.Key.Secret)
	}
	// A secret named for the key usually holds one key; "key" wins when
	// there are more.
	key := sec.Keys[0]
	for _, k := range sec.Keys {
		if k == "key" {
			key = k
		}
	}
	if db.d.cfg.Secret == nil {
		return "", fmt.Errorf("encryption key: no secrets to read %q from", enc.Key.Secret)
	}
	v, ok := db.d.cfg.Secret(enc.Key.Secret, key)
	if !ok || v == "" {
		return "", fmt.Errorf("encryption key: secret %q has no value for key %q", enc.Key.Secret, key)
	}
	return v, nil
}

// Backup dumps the database into its backup folder (encrypted when
// security.encryption.atRest is on), keeps backup.retention of them, and
// returns the new one. Backups of one database run one at a time.
func (db *Database) Backup(ctx context.Context) (b apitype.Backup, err error) {
	db.opMu.Lock()
	defer db.opMu.Unlock()
	defer func() { db.d.metrics.backupDone(db.name, err) }()
	select {
	case <-db.ready:
	default:
		return b, fmt.Errorf("database %q: backup: not ready", db.name)
	}
	key, err := db.encryptionKey()
	if err != nil {
		return b, fmt.Errorf("database %q: backup: %w", db.name, err)
	}
	dir := db.BackupDir()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return b, fmt.Errorf("database %q: backup: %w", db.name, err)
	}
	now := time.Now().UTC()
	name := db.name + "-" + now.Format(backupTime) + db.backupExt()
	if key != "" {
		name += ageSuffix
	}
	// The dump lands in the database's own folder first, beside the data
	// it copies, so that an encrypted backup never exists in clear in
	// the backup folder.
	tmp := filepath.Join(db.dir, "backup.tmp")
	defer os.Remove(tmp)
	if err := db.dump(ctx, tmp); err != nil {
		return b, fmt.Errorf("database %q: backup: %w", db.name, err)
	}
	if err := copyFile(tmp, filepath.Join(dir, name), key, true); err != nil {
		return b, fmt.Errorf("database %q: backup: %w", db.name, err)
	}
	fi, err := os.Stat(filepath.Join(dir, name))
	if err != nil {
		return b, fmt.Errorf("database %q: backup: %w", db.name, err)
	}
	b = apitype.Backup{Name: name, Time: now, Size: fi.Size(), Encrypted: key != ""}
	if err := db.prune(); err != nil {
		db.notify(fmt.Sprintf("database %s: retention: %v", db.name, err))
	}
	db.mu.Lock()
	db.last = &b
	db.mu.Unlock()
	return b, nil
}

// dump writes a backup of the running server to file.
func (db *Database) dump(ctx context.Context, file string) error {
	var cmd *exec.Cmd
	if db.spec.Type == "redis" {
		cli, err := db.bins.Client("redis-cli")
		if err != nil {
			return err
		}
		// --rdb asks the server for a snapshot over the replication
		// protocol: the same file a replica would load.
		args := []string{"-h", host, "-p", fmt.Sprint(db.port), "--user", db.admin.User, "--no-auth-warning"}
		if db.tlsOn() {
			args = append(args, "--tls", "--cacert", db.caPath())
		}
		cmd = exec.CommandContext(ctx, cli, append(args, "--rdb", file)...)
		cmd.Env = append(os.Environ(), "REDISCLI_AUTH="+db.admin.Password.Reveal())
	} else {
		pgDump, err := db.bins.Client("pg_dump")
		if err != nil {
			return err
		}
		cmd = exec.CommandContext(ctx, pgDump, "-h", host, "-p", fmt.Sprint(db.port), "-U", db.admin.User, "-d", db.databaseName(),
			"--format=custom", "--file="+file, "--no-password")
		cmd.Env = append(append(os.Environ(), db.sslEnv()...), "PGPASSWORD="+db.admin.Password.Reveal())
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%s: %w: %s", filepath.Base(cmd.Path), err, lastLine(out))
	}
	return nil
}

// Backups lists the database's backups, oldest first.
func (db *Database) Backups() ([]apitype.Backup, error) {
	ents, err := os.ReadDir(db.BackupDir())
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("database %q: list backups: %w", db.name, err)
	}
	prefix := db.name + "-"
	var out []apitype.Backup
	for _, e := range ents {
		n := e.Name()
		enc := strings.HasSuffix(n, ageSuffix)
		stamp, ok := strings.CutSuffix(strings.TrimSuffix(n, ageSuffix), db.backupExt())
		if !ok || !strings.HasPrefix(stamp, prefix) {
			continue
		}
		t, err := time.Parse(backupTime, strings.TrimPrefix(stamp, prefix))
		if err != nil {
			continue // another database's whose name starts with ours
		}
		fi, err := e.Info()
		if err != nil {
			continue
		}
		out = append(out, apitype.Backup{Name: n, Time: t, Size: fi.Size(), Encrypted: enc})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Time.Before(out[j].Time) })
	return out, nil
}

// prune removes the oldest backups beyond backup.retention.
func (db *Database) prune() error {
	keep := db.spec.Backup.Retention
	if keep <= 0 {
		return nil
	}
	all, err := db.Backups()
	if err != nil {
		return err
	}
	var errs []error
	for len(all) > keep {
		if err := os.Remove(filepath.Join(db.BackupDir(), all[0].Name)); err != nil {
			errs = append(errs, err)
		}
		all = all[1:]
	}
	return errors.Join(errs...)
}

// Restore replaces the database's data with a backup's (the newest when
// name is empty) and returns the backup restored. Clients are
// disconnected: PostgreSQL's database is dropped and created again from
// the dump, Redis is restarted on the snapshot.
func (db *Database) Restore(ctx context.Context, name string) (apitype.Backup, error) {
	db.opMu.Lock()
	defer db.opMu.Unlock()
	all, err := db.Backups()
	if err != nil {
		return apitype.Backup{}, err
	}
	var b *apitype.Backup
	for i := range all {
		if name == "" || all[i].Name == name {
			b = &all[i]
		}
	}
	if b == nil {
		if name == "" {
			return apitype.Backup{}, fmt.Errorf("database %q: restore: %w in %s", db.name, ErrBackupNotFound, db.BackupDir())
		}
		return apitype.Backup{}, fmt.Errorf("database %q: restore %s: %w in %s", db.name, name, ErrBackupNotFound, db.BackupDir())
	}
	select {
	case <-db.ready:
	default:
		return apitype.Backup{}, fmt.Errorf("database %q: restore: not ready", db.name)
	}
	key := ""
	if b.Encrypted {
		if key, err = db.encryptionKey(); err != nil || key == "" {
			return apitype.Backup{}, fmt.Errorf("database %q: restore %s: the backup is encrypted and the key is not available: %v", db.name, b.Name, err)
		}
	}
	tmp := filepath.Join(db.dir, "restore.tmp")
	defer os.Remove(tmp)
	if err := copyFile(filepath.Join(db.BackupDir(), b.Name), tmp, key, false); err != nil {
		return apitype.Backup{}, fmt.Errorf("database %q: restore %s: %w", db.name, b.Name, err)
	}
	if db.spec.Type == "redis" {
		err = db.restoreRedis(ctx, tmp)
	} else {
		err = db.restorePostgres(ctx, tmp)
	}
	if err != nil {
		return apitype.Backup{}, fmt.Errorf("database %q: restore %s: %w", db.name, b.Name, err)
	}
	db.notify(fmt.Sprintf("database %s: restored %s", db.name, b.Name))
	return *b, nil
}

func (db *Database) restorePostgres(ctx context.Context, file string) error {
	p := postgres{}
	conn, err := p.connect(ctx, db, "postgres")
	if err != nil {
		return err
	}
	_, err = conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{db.databaseName()}.Sanitize()+" WITH (FORCE)")
	conn.Close(context.WithoutCancel(ctx))
	if err != nil {
		return fmt.Errorf("drop database: %w", err)
	}
	// setup creates the database again, empty, with its owner and roles.
	if err := p.setup(ctx, db); err != nil {
		return err
	}
	pgRestore, err := db.bins.Client("pg_restore")
	if err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, pgRestore, "-h", host, "-p", fmt.Sprint(db.port), "-U", db.admin.User, "-d", db.databaseName(),
		"--no-password", "--exit-on-error", file)
	cmd.Env = append(append(os.Environ(), db.sslEnv()...), "PGPASSWORD="+db.admin.Password.Reveal())
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("pg_restore: %w: %s", err, lastLine(out))
	}
	// The dump's grants are the ones of its time: apply the spec's again.
	return p.roles(ctx, db)
}

// restoreRedis stops the server, puts the snapshot in place of its data
// (the append-only files go: Redis would load them first), starts it again
// under a new supervisor without the append-only file, then turns that on.
func (db *Database) restoreRedis(ctx context.Context, file string) error {
	db.mu.Lock()
	sup := db.sup
	db.mu.Unlock()
	if err := sup.Stop(ctx); err != nil {
		return err
	}
	data := db.dataDir()
	err := errors.Join(os.RemoveAll(filepath.Join(data, "appendonlydir")), os.Remove(filepath.Join(data, "appendonly.aof")))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	if err := copyFile(file, filepath.Join(data, "dump.rdb"), "", false); err != nil {
		return err
	}
	k := redisKind{}
	db.noAOF = true
	defer func() { db.noAOF = false }()
	if _, err := k.prepare(ctx, db); err != nil {
		return err
	}
	sup, err = db.newSupervisor()
	if err != nil {
		return err
	}
	db.mu.Lock()
	db.sup = sup
	db.mu.Unlock()
	if err := sup.Start(ctx); err != nil {
		return err
	}
	if err := db.waitAnswer(ctx); err != nil {
		return err
	}
	if !db.persistent() {
		return nil
	}
	// Back to the spec's configuration for the next start, and the
	// append-only file written from the restored data.
	db.noAOF = false
	if _, err := k.prepare(ctx, db); err != nil {
		return err
	}
	return k.enableAOF(ctx, db)
}

// copyFile copies src to dst through a temporary file and a rename,
// encrypting (encrypt) or decrypting with passphrase key when it is set.
func copyFile(src, dst, key string, encrypt bool) (err error) {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	tmp := dst + ".part"
	out, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			out.Close()
			os.Remove(tmp)
		}
	}()
	var r io.Reader = in
	var w io.Writer = out
	var closeW func() error
	switch {
	case key != "" && encrypt:
		rcp, err := age.NewScryptRecipient(key)
		if err != nil {
			return err
		}
		aw, err := age.Encrypt(out, rcp)
		if err != nil {
			return err
		}
		w, closeW = aw, aw.Close
	case key != "":
		id, err := age.NewScryptIdentity(key)
		if err != nil {
			return err
		}
		if r, err = age.Decrypt(in, id); err != nil {
			return fmt.Errorf("decrypt %s: %w", filepath.Base(src), err)
		}
	}
	if _, err := io.Copy(w, r); err != nil {
		return err
	}
	if closeW != nil {
		if err := closeW(); err != nil {
			return err
		}
	}
	if err := out.Sync(); err != nil {
		return err
	}
	if err := out.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, dst)
}
