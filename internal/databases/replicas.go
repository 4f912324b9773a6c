package databases

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"github.com/nubo-dev/nubo/internal/apitype"
	"github.com/nubo-dev/nubo/internal/supervisor"
)

// Streaming replicas (replicas: N, PostgreSQL): once the primary is ready,
// each of the N-1 replicas is cloned from it with pg_basebackup -R (which
// writes standby.signal and the primary's connection) the first time, then
// runs as its own supervised postgres on its own port, streaming the
// primary's WAL. A killed replica is restarted by its supervisor and
// catches up from the primary. ${databases.NAME.readUrl} lists the
// replicas, then the primary, with target_session_attrs=prefer-standby.
//
// Replication connects as the superuser: the replicas are nubo's own
// processes. Redis replicas are redis-servers with replicaof the primary.

// Replica states.
const (
	ReplicaStarting  = "starting"
	ReplicaStreaming = "streaming"
	ReplicaFailed    = "failed"
)

type replica struct {
	name string
	dir  string
	port int
	sup  *supervisor.Supervisor

	mu      sync.Mutex
	state   string
	message string
}

func (r *replica) status() apitype.DatabaseReplica {
	r.mu.Lock()
	defer r.mu.Unlock()
	st := apitype.DatabaseReplica{Name: r.name, State: r.state, Message: r.message, Port: r.port}
	if r.sup != nil {
		ss := r.sup.Status()
		if len(ss.Replicas) > 0 {
			st.PID, st.Restarts = ss.Replicas[0].PID, ss.Replicas[0].Restarts
		}
	}
	return st
}

func (r *replica) set(state, msg string) {
	r.mu.Lock()
	r.state, r.message = state, msg
	r.mu.Unlock()
}

// startReplicas starts the replicas of a ready primary; a replica that
// fails is reported and marked, and the primary goes on.
func (db *Database) startReplicas(ctx context.Context) {
	n := db.spec.Replicas - 1
	if n <= 0 {
		return
	}
	var reps []*replica
	for i := 1; i <= n; i++ {
		r := &replica{name: fmt.Sprintf("%s-replica-%d", db.name, i), dir: filepath.Join(db.dir, fmt.Sprintf("replica-%d", i)), state: ReplicaStarting}
		reps = append(reps, r)
	}
	db.mu.Lock()
	if db.stopped {
		db.mu.Unlock()
		return
	}
	db.reps = reps
	db.mu.Unlock()
	for _, r := range reps {
		if err := db.startReplica(ctx, r); err != nil {
			r.set(ReplicaFailed, err.Error())
			db.notify(fmt.Sprintf("database %s: replica %s failed: %v", db.name, r.name, err))
			continue
		}
		r.set(ReplicaStreaming, "")
		db.notify(fmt.Sprintf("database %s: replica %s streaming on %s:%d", db.name, r.name, host, r.port))
	}
}

func (db *Database) startReplica(ctx context.Context, r *replica) error {
	port, err := stablePort(r.dir + ".port")
	if err != nil {
		return err
	}
	r.port = port
	if db.spec.Type == "redis" {
		return db.startRedisReplica(ctx, r)
	}
	if _, err := os.Stat(filepath.Join(r.dir, "PG_VERSION")); err != nil {
		if err := db.cloneReplica(ctx, r); err != nil {
			return err
		}
	}
	args := []string{"exec", shellQuote(db.bins.Path("postgres")), "-D", shellQuote(r.dir),
		"-p", strconv.Itoa(port), "-c", "listen_addresses=" + host, "-c", "unix_socket_directories=''"}
	if db.tlsOn() {
		args = append(args, "-c", "ssl=on", "-c", "ssl_cert_file="+shellQuote(filepath.Join(db.dir, "server.crt")),
			"-c", "ssl_key_file="+shellQuote(filepath.Join(db.dir, "server.key")))
	}
	sup, err := db.supervise(r.name, strings.Join(args, " "), port)
	if err != nil {
		return err
	}
	r.mu.Lock()
	r.sup = sup
	r.mu.Unlock()
	if err := sup.Start(ctx); err != nil {
		return err
	}
	return db.waitAnswerOn(ctx, port)
}

// startRedisReplica runs a redis-server with replicaof the primary: it
// loads the primary's data over the replication protocol, and again after
// a restart.
func (db *Database) startRedisReplica(ctx context.Context, r *replica) error {
	command, err := redisConfig(db, r.dir, r.dir+".conf", r.port, []string{
		"replicaof " + host + " " + strconv.Itoa(db.port),
		"masteruser " + db.admin.User,
		"masterauth " + db.admin.Password.Reveal(),
		"replica-read-only yes",
		// A replica loads the primary's data at each start, so it keeps
		// none of its own; and Redis refuses SIGTERM while it writes its
		// first append-only file, which a replica stopped right after its
		// sync would hit (then only SIGKILL stops it).
		"appendonly no",
		`save ""`,
	})
	if err != nil {
		return err
	}
	sup, err := db.supervise(r.name, command, r.port)
	if err != nil {
		return err
	}
	r.mu.Lock()
	r.sup = sup
	r.mu.Unlock()
	if err := sup.Start(ctx); err != nil {
		return err
	}
	return db.waitAnswerOn(ctx, r.port)
}

// cloneReplica copies the primary into r.dir with pg_basebackup, as the
// server's user, and makes it a standby of the primary.
func (db *Database) cloneReplica(ctx context.Context, r *replica) error {
	if err := os.RemoveAll(r.dir); err != nil {
		return err
	}
	bb, err := db.bins.Client("pg_basebackup")
	if err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, bb, "-D", r.dir, "-h", host, "-p", strconv.Itoa(db.port), "-U", db.admin.User,
		"--write-recovery-conf", "--checkpoint=fast", "--wal-method=stream", "--no-password")
	cmd.Dir = db.dir
	cmd.Env = append(append(os.Environ(), db.sslEnv()...), "PGPASSWORD="+db.admin.Password.Reveal())
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: db.runAs.cred}
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("pg_basebackup: %w: %s", err, lastLine(out))
	}
	return nil
}

func (db *Database) stopReplicas(ctx context.Context) {
	db.mu.Lock()
	reps := db.reps
	db.mu.Unlock()
	var wg sync.WaitGroup
	for _, r := range reps {
		r.mu.Lock()
		sup := r.sup
		r.mu.Unlock()
		wg.Go(func() { _ = sup.Stop(ctx) })
	}
	wg.Wait()
}

// readURL lists the replicas, then the primary: a reader lands on a
// standby while one runs. Redis clients take one address: the first
// replica's.
func (db *Database) readURL(c Credentials) string {
	if db.spec.Replicas <= 1 {
		return db.URL(c)
	}
	if db.spec.Type == "redis" {
		if p := db.replicaPort(1); p > 0 {
			return db.kind.url(db, p, c.User, c.Password.Reveal())
		}
		return db.URL(c)
	}
	var hosts []string
	for i := 1; i < db.spec.Replicas; i++ {
		p := db.replicaPort(i)
		if p > 0 {
			hosts = append(hosts, net.JoinHostPort(host, strconv.Itoa(p)))
		}
	}
	hosts = append(hosts, net.JoinHostPort(host, strconv.Itoa(db.port)))
	u := url.URL{Scheme: "postgres", User: url.UserPassword(c.User, c.Password.Reveal()), Host: strings.Join(hosts, ","), Path: "/" + db.databaseName()}
	return u.String() + "?" + db.sslQuery() + "&target_session_attrs=prefer-standby"
}

// replicaPort is replica i's port: the one recorded, chosen by plan.
func (db *Database) replicaPort(i int) int {
	b, err := os.ReadFile(filepath.Join(db.dir, fmt.Sprintf("replica-%d.port", i)))
	if err != nil {
		return 0
	}
	p, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return p
}
