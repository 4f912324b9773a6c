package databases

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"fmt"
	mathrand "math/rand/v2"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/nubo-dev/nubo/internal/apitype"
	"github.com/nubo-dev/nubo/internal/secrets"
	"github.com/nubo-dev/nubo/internal/spec"
	"github.com/nubo-dev/nubo/internal/supervisor"
)

// Database states, as `nubo status` shows them.
const (
	StateStarting = "starting"
	StateReady    = "ready"
	StateFailed   = "failed"
)

// StoreSecret is the secrets store's entry that holds the generated
// passwords, one key per database and user: "NAME/admin", "NAME/owner",
// "NAME/role/ROLE".
const StoreSecret = "nubo-databases"

// AdminStoreKey is the key of StoreSecret that holds database name's
// superuser password (`nubo db shell` reads it).
func AdminStoreKey(name string) string { return name + "/admin" }

// AdminUser is the superuser of a database of type typ.
func AdminUser(typ string) string {
	if typ == "redis" {
		return redisKind{}.adminUser()
	}
	return postgres{}.adminUser()
}

// host is where every server listens: loopback only.
const host = "127.0.0.1"

// kind is what differs between PostgreSQL and Redis.
type kind interface {
	// adminUser is the superuser's name.
	adminUser() string
	// prepare readies the data folder and returns the server's command.
	prepare(ctx context.Context, db *Database) (string, error)
	// ping connects as the admin to the server on port and runs a query.
	ping(ctx context.Context, db *Database, port int) error
	// setup creates the database, the roles and their grants.
	setup(ctx context.Context, db *Database) error
	// url is the connection URL for user and password on port.
	url(db *Database, port int, user, password string) string
	// stopSignal is the server's fast shutdown signal.
	stopSignal() syscall.Signal
}

// Credentials are a user and its password.
type Credentials struct {
	User     string
	Password secrets.Value
}

// Database is one database of the spec.
type Database struct {
	d    *Databases
	name string
	spec *spec.Database
	kind kind
	dir  string // StateDir/databases/NAME

	// Set by plan, before the server starts, and not changed after.
	planned bool
	port    int
	admin   Credentials            // the superuser: nubo's own (setup, backups, shell)
	owner   Credentials            // PostgreSQL: the database's owner, as CloudNativePG's "app"
	roles   map[string]Credentials // by role name
	runAs   runAs
	bins    Binaries
	command string     // the server's command line, for a restart after a restore
	allow   *allowList // the per-workload listeners; nil without security.network
	noAOF   bool       // Redis: start without the append-only file (a restore); under opMu

	ready chan struct{} // closed once the server answers and is set up
	opMu  sync.Mutex    // serializes backups and restores

	mu      sync.Mutex // guards the fields below
	state   string
	message string
	sup     *supervisor.Supervisor
	stopped bool
	last    *apitype.Backup
	reps    []*replica // PostgreSQL's streaming replicas, once started
}

func newDatabase(d *Databases, name string, s *spec.Database) (*Database, error) {
	db := &Database{d: d, name: name, spec: s, dir: filepath.Join(d.cfg.StateDir, "databases", name),
		ready: make(chan struct{}), state: StateStarting, roles: map[string]Credentials{}}
	switch s.Type {
	case "postgres":
		db.kind = postgres{}
	case "redis":
		db.kind = redisKind{}
	default:
		return nil, fmt.Errorf("database %q: type %q is not postgres or redis", name, s.Type)
	}
	for _, r := range s.Security.Access.Roles {
		if r.Name == db.kind.adminUser() || (s.Type == "postgres" && r.Name == ownerName) {
			return nil, fmt.Errorf("database %q: role %q is the name of a user nubo creates; choose another", name, r.Name)
		}
	}
	return db, nil
}

// Name names the database.
func (db *Database) Name() string { return db.name }

// Type is "postgres" or "redis".
func (db *Database) Type() string { return db.spec.Type }

// Ready is closed once the database answers queries and is set up.
func (db *Database) Ready() <-chan struct{} { return db.ready }

// isReady reports whether Ready is closed. Its closing orders everything
// start decided (the port, the credentials) before the reader's reads,
// which the scrapes and collectors on other goroutines need.
func (db *Database) isReady() bool {
	select {
	case <-db.ready:
		return true
	default:
		return false
	}
}

// Failure says why the database is not ready when it has failed, else "".
func (db *Database) Failure() string {
	db.mu.Lock()
	defer db.mu.Unlock()
	if db.state != StateFailed {
		return ""
	}
	return db.message
}

// Admin returns the admin's credentials; they are known once Start has
// begun.
func (db *Database) Admin() Credentials { return db.admin }

// Port is the server's loopback port, known once Start has begun.
func (db *Database) Port() int { return db.port }

// Binaries are the server's programs, found by Start.
func (db *Database) Binaries() Binaries { return db.bins }

// Dir is the database's folder under the state directory.
func (db *Database) Dir() string { return db.dir }

// dataDir is where the server keeps its files.
func (db *Database) dataDir() string { return filepath.Join(db.dir, "data") }

func (db *Database) persistent() bool {
	return db.spec.Storage.Persistent == nil || *db.spec.Storage.Persistent
}

func (db *Database) notify(msg string) { db.d.cfg.Notify(db.name, msg) }

// fail marks the database failed with a one-line reason.
func (db *Database) fail(err error) {
	msg := err.Error()
	db.mu.Lock()
	db.state, db.message = StateFailed, msg
	db.mu.Unlock()
	db.notify(fmt.Sprintf("database %s failed: %s", db.name, msg))
}

// start brings the database up; a failure is recorded, not returned.
func (db *Database) start(ctx context.Context) {
	if err := db.plan(); err != nil {
		db.fail(err)
		return
	}
	bins, err := db.d.cfg.Finder.Find(db.spec.Type, db.spec.Version)
	if err != nil {
		db.fail(err)
		return
	}
	db.bins = bins
	command, err := db.kind.prepare(ctx, db)
	if err != nil {
		db.fail(err)
		return
	}
	db.command = command
	sup, err := db.newSupervisor()
	if err != nil {
		db.fail(err)
		return
	}
	db.mu.Lock()
	if db.stopped {
		db.mu.Unlock()
		return
	}
	db.sup = sup
	db.mu.Unlock()
	began := time.Now()
	if err := sup.Start(ctx); err != nil {
		db.fail(err)
		return
	}
	if err := db.waitAnswer(ctx); err != nil {
		db.fail(err)
		return
	}
	if err := db.kind.setup(ctx, db); err != nil {
		db.fail(fmt.Errorf("set up: %w", err))
		return
	}
	if err := db.applyPendingRestore(ctx); err != nil {
		db.fail(err)
		return
	}
	// The newest backup of earlier runs, for status, until this run takes one.
	var last *apitype.Backup
	if all, err := db.Backups(); err == nil && len(all) > 0 {
		last = &all[len(all)-1]
	}
	db.mu.Lock()
	db.state, db.message, db.last = StateReady, "", last
	db.mu.Unlock()
	close(db.ready)
	db.startReplicas(ctx)
	db.notify(fmt.Sprintf("database %s ready: %s %s on %s:%d (%s)", db.name, server(db.spec.Type), bins.Full, host, db.port,
		time.Since(began).Round(time.Millisecond)))
}

// newSupervisor makes the supervisor of the server's process.
func (db *Database) newSupervisor() (*supervisor.Supervisor, error) {
	return db.supervise(db.name, db.command, db.port)
}

// supervise makes the supervisor of one server process (the primary, or
// a replica) that listens on port.
func (db *Database) supervise(name, command string, port int) (*supervisor.Supervisor, error) {
	return supervisor.New(supervisor.ServiceConfig{
		Name:       name,
		Command:    command,
		Dir:        db.dir,
		Replicas:   1,
		Restart:    supervisor.RestartAlways,
		StopSignal: db.kind.stopSignal(),
		Credential: db.runAs.cred,
		Backoff:    db.d.cfg.Backoff,
		// No probe: the component's readiness (Ready) is a query answered,
		// and a bare TCP probe makes a TLS server log an error each time.
	},
		supervisor.WithLogger(db.d.log.With("database", name)),
		supervisor.WithLineSink(db.d.cfg.Lines),
		supervisor.WithEventSink(db.d.cfg.Events),
	)
}

// waitAnswer polls the server until it answers a query as the admin. The
// last error says why it does not.
func (db *Database) waitAnswer(ctx context.Context) error { return db.waitAnswerOn(ctx, db.port) }

// waitAnswerOn waits for the server on port (the primary, or a replica).
func (db *Database) waitAnswerOn(ctx context.Context, port int) error {
	ctx, cancel := context.WithTimeout(ctx, db.d.cfg.ReadyTimeout)
	defer cancel()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		pctx, pcancel := context.WithTimeout(ctx, 2*time.Second)
		err := db.kind.ping(pctx, db, port)
		pcancel()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("no answer on %s:%d after %s: %w", host, port, db.d.cfg.ReadyTimeout, err)
		case <-tick.C:
		}
	}
}

func (db *Database) stop(ctx context.Context) error {
	db.mu.Lock()
	db.stopped = true
	sup := db.sup
	db.mu.Unlock()
	db.allow.close()
	db.stopReplicas(ctx)
	if err := sup.Stop(ctx); err != nil {
		return fmt.Errorf("database %q: stop: %w", db.name, err)
	}
	return nil
}

// plan decides what workloads are told before the server runs: the port
// (the one of the last run when it is still free), the admin's and the
// roles' passwords (generated once, kept in the secrets store). A database
// that is not persistent starts from an empty folder.
func (db *Database) plan() error {
	ra, err := lookupRunAs()
	if err != nil {
		return err
	}
	if db.spec.Type == "postgres" {
		db.runAs = ra
	}
	if !db.persistent() {
		if err := os.RemoveAll(db.dir); err != nil {
			return fmt.Errorf("empty %s (storage.persistent is false): %w", db.dir, err)
		}
	}
	// The databases folder lets others through (not read): as root,
	// PostgreSQL runs as its own user, which must reach its data below.
	parent := filepath.Dir(db.dir)
	if err := os.MkdirAll(parent, 0o711); err != nil {
		return fmt.Errorf("create %s: %w", parent, err)
	}
	if err := os.Chmod(parent, 0o711); err != nil {
		return fmt.Errorf("create %s: %w", parent, err)
	}
	if err := os.MkdirAll(db.dir, 0o700); err != nil {
		return fmt.Errorf("create %s: %w", db.dir, err)
	}
	if db.port, err = stablePort(filepath.Join(db.dir, "port")); err != nil {
		return err
	}
	pw, err := db.password("admin")
	if err != nil {
		return err
	}
	db.admin = Credentials{User: db.kind.adminUser(), Password: pw}
	db.owner = db.admin
	if db.spec.Type == "postgres" {
		if pw, err = db.password("owner"); err != nil {
			return err
		}
		db.owner = Credentials{User: ownerName, Password: pw}
	}
	for _, r := range db.spec.Security.Access.Roles {
		pw, err := db.password("role/" + r.Name)
		if err != nil {
			return err
		}
		db.roles[r.Name] = Credentials{User: r.Name, Password: pw}
	}
	if db.allow, err = db.openAllowList(); err != nil {
		return err
	}
	db.planned = true
	return nil
}

// password returns the stored password of who, generating and storing one
// the first time.
func (db *Database) password(who string) (secrets.Value, error) {
	key := db.name + "/" + who
	v, ok, err := db.d.cfg.Store.Get(StoreSecret, key)
	if err != nil {
		return secrets.Value{}, fmt.Errorf("read the %s password from the secrets store: %w", who, err)
	}
	if ok {
		return v, nil
	}
	v = secrets.NewValue(newPassword())
	if err := db.d.cfg.Store.Set(StoreSecret, key, v); err != nil {
		return secrets.Value{}, fmt.Errorf("keep the %s password in the secrets store: %w", who, err)
	}
	return v, nil
}

// newPassword returns 130 random bits, in characters that need no escaping
// in URLs, SQL literals or Redis ACL rules.
func newPassword() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand's contract)
	return strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b[:]))
}

// stablePort returns the port recorded in file when it is free, else a
// free one, which it records: a database keeps its port across runs, so
// that a URL copied into a tool keeps working.
func stablePort(file string) (int, error) {
	if b, err := os.ReadFile(file); err == nil {
		if p, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && p > 0 && p < 65536 {
			if l, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(p))); err == nil {
				l.Close()
				return p, nil
			}
		}
	}
	p, err := freePort()
	if err != nil {
		return 0, err
	}
	if err := os.WriteFile(file, []byte(strconv.Itoa(p)+"\n"), 0o600); err != nil {
		return 0, fmt.Errorf("record the port: %w", err)
	}
	return p, nil
}

// freePort returns a loopback port that is free now, for a server that
// binds it a moment later (PostgreSQL after initdb). It is picked outside
// the kernel's ephemeral range: a port from there can be taken in between
// by any outgoing connection or listener on port 0 (CI saw PostgreSQL fail
// with "Address already in use", then every restart, on its recorded port).
func freePort() (int, error) {
	lo, hi := ephemeralRange()
	for range 100 {
		p := 10000 + mathrand.IntN(65536-10000)
		if p >= lo && p <= hi {
			continue
		}
		if l, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(p))); err == nil {
			l.Close()
			return p, nil
		}
	}
	l, err := net.Listen("tcp", host+":0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// ephemeralRange is the kernel's range of ports for outgoing connections
// and port 0 (Linux's default where it cannot be read).
func ephemeralRange() (lo, hi int) {
	lo, hi = 32768, 60999
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return lo, hi
	}
	f := strings.Fields(string(b))
	if len(f) != 2 {
		return lo, hi
	}
	l, err1 := strconv.Atoi(f[0])
	h, err2 := strconv.Atoi(f[1])
	if err1 != nil || err2 != nil || l > h {
		return lo, hi
	}
	return l, h
}

// credentials returns who a workload connects as: the role that lists it,
// else the database's owner (Redis: the default user).
func (db *Database) credentials(workload string) Credentials {
	for _, r := range db.spec.Security.Access.Roles {
		for _, s := range r.Services {
			if s == workload {
				return db.roles[r.Name]
			}
		}
	}
	return db.owner
}

// RoleCredentials returns a role's credentials.
func (db *Database) RoleCredentials(role string) (Credentials, bool) {
	c, ok := db.roles[role]
	return c, ok
}

// ownerName names the PostgreSQL database workloads use and its owner, as
// CloudNativePG names them ("app"), so that code written against one runs
// against the other.
const ownerName = "app"

// databaseName is the database workloads use: PostgreSQL's "app"; Redis
// has numbered databases, and workloads use 0.
func (db *Database) databaseName() string {
	if db.spec.Type == "redis" {
		return "0"
	}
	return ownerName
}

// DatabaseName is the database workloads use ("app", or Redis' "0").
func (db *Database) DatabaseName() string { return db.databaseName() }

// URL returns the connection URL as c, straight to the server.
func (db *Database) URL(c Credentials) string {
	return db.kind.url(db, db.port, c.User, c.Password.Reveal())
}

// portFor is the port workload connects to: its own allow-list listener
// when the database has one, else the server's.
func (db *Database) portFor(workload string) int {
	if db.allow != nil {
		if p, ok := db.allow.port(workload); ok {
			return p
		}
	}
	return db.port
}

func (db *Database) lookup(attr, workload string) (string, error) {
	if !db.planned {
		return "", nil
	}
	c := db.credentials(workload)
	switch attr {
	case "url":
		return db.kind.url(db, db.portFor(workload), c.User, c.Password.Reveal()), nil
	case "host":
		return host, nil
	case "port":
		return strconv.Itoa(db.portFor(workload)), nil
	case "user":
		return c.User, nil
	case "password":
		return c.Password.Reveal(), nil
	case "database":
		return db.databaseName(), nil
	case "readUrl":
		return db.readURL(c), nil
	}
	return "", fmt.Errorf("database %q has no attribute %q", db.name, attr)
}

// Status returns a snapshot of the database.
func (db *Database) Status() apitype.Database {
	db.mu.Lock()
	defer db.mu.Unlock()
	st := apitype.Database{Name: db.name, Type: db.spec.Type, Version: db.bins.Full, State: db.state, Message: db.message,
		Role: "primary", Port: db.port, Persistent: db.persistent(), Dir: db.dir, LastBackup: db.last, TLS: db.tlsOn()}
	if db.sup != nil {
		ss := db.sup.Status()
		if len(ss.Replicas) > 0 {
			st.PID, st.Restarts = ss.Replicas[0].PID, ss.Replicas[0].Restarts
		}
	}
	for _, r := range db.reps {
		st.Replicas = append(st.Replicas, r.status())
	}
	return st
}

// userURL builds scheme://user:password@127.0.0.1:port/path.
func userURL(scheme, user, password string, port int, path string) string {
	u := url.URL{Scheme: scheme, User: url.UserPassword(user, password), Host: net.JoinHostPort(host, strconv.Itoa(port)), Path: "/" + path}
	return u.String()
}
