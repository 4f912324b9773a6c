package databases

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/jackc/pgx/v5"
)

// postgres runs PostgreSQL: initdb once into the data folder, then the
// postgres server on a loopback port with no Unix socket (its default
// folder, /var/run/postgresql, belongs to the system's cluster; a socket
// path under a deep state directory can pass the 107-byte limit).
type postgres struct{}

func (postgres) adminUser() string { return "postgres" }

// stopSignal: SIGINT is PostgreSQL's fast shutdown (clients are
// disconnected, a checkpoint is written); SIGTERM would wait for every
// client to leave.
func (postgres) stopSignal() syscall.Signal { return syscall.SIGINT }

func (postgres) url(db *Database, port int, user, password string) string {
	return userURL("postgres", user, password, port, db.databaseName()) + "?" + db.sslQuery()
}

func (postgres) prepare(ctx context.Context, db *Database) (string, error) {
	if db.runAs.cred != nil {
		// The state directory is nubo's (0700): as root, let the server's
		// user through it (x, not r); what is inside keeps its own modes
		// (the secrets store is 0600).
		if err := addMode(db.d.cfg.StateDir, 0o011); err != nil {
			return "", err
		}
	}
	if err := db.runAs.checkReach(db.dir); err != nil {
		return "", err
	}
	data := db.dataDir()
	if b, err := os.ReadFile(filepath.Join(data, "PG_VERSION")); err == nil {
		if have := strings.TrimSpace(string(b)); have != db.bins.Major {
			return "", fmt.Errorf("the data in %s is PostgreSQL %s's, but the server found is %s (%s): use PostgreSQL %s, or remove the folder to start afresh",
				data, have, db.bins.Full, db.bins.Dir, have)
		}
	} else {
		if err := initdb(ctx, db); err != nil {
			return "", err
		}
	}
	if err := db.writeHBA(); err != nil {
		return "", fmt.Errorf("write pg_hba.conf: %w", err)
	}
	args := []string{"exec", shellQuote(db.bins.Path("postgres")), "-D", shellQuote(data),
		"-p", strconv.Itoa(db.port), "-c", "listen_addresses=" + host, "-c", "unix_socket_directories=''"}
	if db.tlsOn() {
		cert, key, err := db.tlsFiles()
		if err != nil {
			return "", err
		}
		args = append(args, "-c", "ssl=on", "-c", "ssl_cert_file="+shellQuote(cert), "-c", "ssl_key_file="+shellQuote(key))
	}
	if err := db.runAs.own(db.dir); err != nil {
		return "", err
	}
	return strings.Join(args, " "), nil
}

// initdb creates the cluster with the admin's password, scram-sha-256
// authentication for everyone, UTF-8 and the C locale (the same sort order
// on every machine).
func initdb(ctx context.Context, db *Database) error {
	data := db.dataDir()
	if err := os.RemoveAll(data); err != nil { // what a failed initdb left
		return fmt.Errorf("initdb: %w", err)
	}
	pwfile := filepath.Join(db.dir, "initdb.pw")
	if err := os.WriteFile(pwfile, []byte(db.admin.Password.Reveal()+"\n"), 0o600); err != nil {
		return fmt.Errorf("initdb: %w", err)
	}
	defer os.Remove(pwfile)
	if err := db.runAs.own(db.dir); err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, db.bins.Path("initdb"), "-D", data, "-U", db.admin.User, "--pwfile="+pwfile,
		"-A", "scram-sha-256", "-E", "UTF8", "--no-locale")
	cmd.Dir = db.dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: db.runAs.cred}
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("initdb %s: %w: %s", data, err, lastLine(out))
	}
	db.notify(fmt.Sprintf("database %s: initialized %s", db.name, data))
	return nil
}

func (p postgres) connect(ctx context.Context, db *Database, database string) (*pgx.Conn, error) {
	return p.connectPort(ctx, db, db.port, database)
}

func (postgres) connectPort(ctx context.Context, db *Database, port int, database string) (*pgx.Conn, error) {
	return pgx.Connect(ctx, userURL("postgres", db.admin.User, db.admin.Password.Reveal(), port, database)+"?"+db.sslQuery())
}

func (p postgres) ping(ctx context.Context, db *Database, port int) error {
	conn, err := p.connectPort(ctx, db, port, "postgres")
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	_, err = conn.Exec(ctx, "SELECT 1")
	return err
}

// setup creates the owner and its database when they do not exist, sets
// the owner's password to the stored one, then the roles.
func (p postgres) setup(ctx context.Context, db *Database) error {
	conn, err := p.connect(ctx, db, "postgres")
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	owner := pgx.Identifier{db.owner.User}.Sanitize()
	var exists bool
	if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)", db.owner.User).Scan(&exists); err != nil {
		return fmt.Errorf("owner %q: %w", db.owner.User, err)
	}
	verb := "CREATE"
	if exists {
		verb = "ALTER"
	}
	// The verifier, not the password (see scramVerifier).
	v, err := scramVerifier(db.owner.Password.Reveal())
	if err != nil {
		return err
	}
	if _, err := conn.Exec(ctx, fmt.Sprintf("%s ROLE %s LOGIN PASSWORD '%s'", verb, owner, v)); err != nil {
		return fmt.Errorf("%s ROLE %q: %w", verb, db.owner.User, err)
	}
	if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", db.databaseName()).Scan(&exists); err != nil {
		return err
	}
	if !exists {
		if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{db.databaseName()}.Sanitize()+" OWNER "+owner); err != nil {
			return fmt.Errorf("create database %q: %w", db.databaseName(), err)
		}
	}
	return p.roles(ctx, db)
}

// shellQuote quotes s for sh.
func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// lastLine is the last non-empty line of a program's output, for errors.
func lastLine(out []byte) string {
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}
