package databases

import (
	"context"
	"crypto/tls"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
)

// redisKind runs redis-server (or valkey-server) from a configuration file
// nubo writes on every start: loopback only, the data folder, persistence,
// and one ACL user per role. The file holds the passwords, so it is the
// database folder's, mode 0600; passwords on the command line would show in
// ps.
type redisKind struct{}

// adminUser is Redis' default user, which requirepass protects.
func (redisKind) adminUser() string { return "default" }

func (redisKind) stopSignal() syscall.Signal { return syscall.SIGTERM }

func (redisKind) url(db *Database, port int, user, password string) string {
	if db.tlsOn() {
		return userURL("rediss", user, password, port, db.databaseName())
	}
	return userURL("redis", user, password, port, db.databaseName())
}

func (redisKind) prepare(_ context.Context, db *Database) (string, error) {
	return redisConfig(db, db.dataDir(), filepath.Join(db.dir, "redis.conf"), db.port, nil)
}

// redisConfig writes the configuration of one server (the primary, or a
// replica with its replicaof lines in extra) and returns its command.
func redisConfig(db *Database, data, conf string, port int, extra []string) (string, error) {
	if err := os.MkdirAll(data, 0o700); err != nil {
		return "", fmt.Errorf("create %s: %w", data, err)
	}
	q := strconv.Quote
	lines := []string{
		"bind " + host,
		"protected-mode yes",
		"daemonize no",
		"dir " + q(data),
		"dbfilename dump.rdb",
		// A diskless sync (a replica's, or a backup's redis-cli --rdb)
		// starts at once instead of waiting 5 s for more replicas.
		"repl-diskless-sync-delay 0",
	}
	if db.persistent() && !db.noAOF {
		// The append-only file loses at most a second of writes; the
		// snapshots are what backups copy.
		lines = append(lines, "appendonly yes", "appendfsync everysec", "save 3600 1 300 100 60 10000")
	} else {
		lines = append(lines, "appendonly no", `save ""`)
	}
	lines = append(lines, "user default on >"+db.admin.Password.Reveal()+" ~* &* +@all")
	for _, r := range db.spec.Security.Access.Roles {
		lines = append(lines, "user "+r.Name+" reset on >"+db.roles[r.Name].Password.Reveal()+" "+redisACL(r.Grants))
	}
	if db.tlsOn() {
		cert, key, err := db.tlsFiles()
		if err != nil {
			return "", err
		}
		lines = append(lines, "port 0", "tls-port "+strconv.Itoa(port), "tls-cert-file "+q(cert), "tls-key-file "+q(key),
			"tls-ca-cert-file "+q(db.caPath()), "tls-auth-clients no", "tls-replication yes")
	} else {
		lines = append(lines, "port "+strconv.Itoa(port))
	}
	lines = append(lines, extra...)
	if err := os.WriteFile(conf, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("write %s: %w", conf, err)
	}
	return "exec " + shellQuote(serverPath(db.bins)) + " " + shellQuote(conf), nil
}

// serverPath is the server program found in b's folder.
func serverPath(b Binaries) string {
	if fileExists(b.Path("redis-server")) {
		return b.Path("redis-server")
	}
	return b.Path("valkey-server")
}

func (redisKind) client(db *Database, c Credentials) *redis.Client {
	return redisKind{}.clientPort(db, db.port, c)
}

func (redisKind) clientPort(db *Database, port int, c Credentials) *redis.Client {
	// A CA that cannot be read makes the TLS handshake fail, which the
	// caller reports as the server not answering.
	tc, _ := db.clientTLS()
	if tc == nil && db.tlsOn() {
		tc = &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12}
	}
	return redis.NewClient(&redis.Options{Addr: fmt.Sprintf("%s:%d", host, port), Username: c.User, Password: c.Password.Reveal(),
		MaxRetries: -1, DisableIdentity: true, TLSConfig: tc})
}

func (k redisKind) ping(ctx context.Context, db *Database, port int) error {
	c := k.clientPort(db, port, db.admin)
	defer c.Close()
	return c.Ping(ctx).Err()
}

func (redisKind) setup(context.Context, *Database) error { return nil }

// enableAOF turns the append-only file on in a server started without it
// (after a restore: Redis loads an existing append-only file before a
// snapshot, so it starts from the snapshot alone) and waits until the
// file has been written from the data.
func (k redisKind) enableAOF(ctx context.Context, db *Database) error {
	c := k.client(db, db.admin)
	defer c.Close()
	if err := c.ConfigSet(ctx, "appendonly", "yes").Err(); err != nil {
		return fmt.Errorf("turn the append-only file on: %w", err)
	}
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		info, err := c.Info(ctx, "persistence").Result()
		if err != nil {
			return err
		}
		if strings.Contains(info, "aof_rewrite_in_progress:0") && strings.Contains(info, "aof_rewrite_scheduled:0") &&
			strings.Contains(info, "aof_enabled:1") {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("write the append-only file: %w", ctx.Err())
		case <-tick.C:
		}
	}
}
