package databases

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// The servers' metrics carry the names of the Prometheus community's
// exporters (postgres_exporter, redis_exporter), so that the alerts and
// dashboards users write against nubo up carry over to Kubernetes, where
// those exporters (or CloudNativePG's, configured with the same queries)
// run. The exporters are not imported: they are applications (flags,
// globals, their own HTTP servers), and their collectors are not a stable
// library API. The queries below are theirs; the subset is the one their
// default dashboards and the usual alerts use.

// scrapeTimeout bounds one scrape of a server.
const scrapeTimeout = 5 * time.Second

// Exporter returns the handler of the database's metrics, for the
// engine's scraper: as a scrape of the exporter in Kubernetes, one request
// queries the server once.
func (db *Database) Exporter() http.Handler {
	reg := prometheus.NewRegistry()
	if db.spec.Type == "redis" {
		reg.MustRegister(redisCollector{db})
	} else {
		reg.MustRegister(pgCollector{db})
	}
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
}

// Monitored reports whether monitoring.enabled is set.
func (db *Database) Monitored() bool { return db.spec.Monitoring.Enabled }

func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc(name, help, labels, nil)
}

var (
	pgUp              = desc("pg_up", "Whether the last scrape of PostgreSQL succeeded.")
	pgActivity        = desc("pg_stat_activity_count", "Number of connections in this state.", "datname", "state")
	pgMaxTx           = desc("pg_stat_activity_max_tx_duration", "Longest running transaction, in seconds, by state.", "datname", "state")
	pgDatabaseSize    = desc("pg_database_size_bytes", "Disk space used by the database.", "datname")
	pgMaxConnections  = desc("pg_settings_max_connections", "Server setting max_connections.")
	pgStartTime       = desc("pg_postmaster_start_time_seconds", "Time at which the postmaster started.")
	pgReplicationLag  = desc("pg_stat_replication_pg_wal_lsn_diff", "Bytes of WAL a replica has still to replay (the replication lag).", "application_name", "client_addr", "state")
	pgStatDatabaseCol = []struct {
		col   string
		gauge bool
		help  string
	}{
		{"numbackends", true, "Number of backends currently connected to this database."},
		{"xact_commit", false, "Number of transactions in this database that have been committed."},
		{"xact_rollback", false, "Number of transactions in this database that have been rolled back."},
		{"blks_read", false, "Number of disk blocks read in this database."},
		{"blks_hit", false, "Number of times disk blocks were found already in the buffer cache."},
		{"tup_returned", false, "Number of rows returned by queries in this database."},
		{"tup_fetched", false, "Number of rows fetched by queries in this database."},
		{"tup_inserted", false, "Number of rows inserted by queries in this database."},
		{"tup_updated", false, "Number of rows updated by queries in this database."},
		{"tup_deleted", false, "Number of rows deleted by queries in this database."},
		{"conflicts", false, "Number of queries canceled due to conflicts with recovery."},
		{"temp_files", false, "Number of temporary files created by queries."},
		{"temp_bytes", false, "Total amount of data written to temporary files by queries."},
		{"deadlocks", false, "Number of deadlocks detected in this database."},
	}
)

// pgActivityQuery is postgres_exporter's pg_stat_activity query: every
// state of every database, zero included, so that an alert on a count has
// a series to compare.
const pgActivityQuery = `SELECT d.datname, s.state, count(a.pid), COALESCE(max(EXTRACT(EPOCH FROM now() - a.xact_start)), 0)
FROM pg_database d
CROSS JOIN (VALUES ('active'), ('idle'), ('idle in transaction'), ('idle in transaction (aborted)'), ('fastpath function call'), ('disabled')) AS s(state)
LEFT JOIN pg_stat_activity a ON a.datname = d.datname AND a.state = s.state
WHERE NOT d.datistemplate
GROUP BY d.datname, s.state`

type pgCollector struct{ db *Database }

func (c pgCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- pgUp
	ch <- pgActivity
	ch <- pgMaxTx
	ch <- pgDatabaseSize
	ch <- pgMaxConnections
	ch <- pgStartTime
	ch <- pgReplicationLag
	for _, col := range pgStatDatabaseCol {
		ch <- desc("pg_stat_database_"+col.col, col.help, "datid", "datname")
	}
}

func (c pgCollector) Collect(ch chan<- prometheus.Metric) {
	if !c.db.isReady() {
		return // the port and credentials are known once it is
	}
	ctx, cancel := context.WithTimeout(context.Background(), scrapeTimeout)
	defer cancel()
	up := 0.0
	defer func() { ch <- prometheus.MustNewConstMetric(pgUp, prometheus.GaugeValue, up) }()
	conn, err := postgres{}.connect(ctx, c.db, "postgres")
	if err != nil {
		return
	}
	defer conn.Close(context.WithoutCancel(ctx))
	rows, err := conn.Query(ctx, pgActivityQuery)
	if err != nil {
		return
	}
	for rows.Next() {
		var datname, state string
		var n int64
		var maxTx float64
		if rows.Scan(&datname, &state, &n, &maxTx) == nil {
			ch <- prometheus.MustNewConstMetric(pgActivity, prometheus.GaugeValue, float64(n), datname, state)
			ch <- prometheus.MustNewConstMetric(pgMaxTx, prometheus.GaugeValue, maxTx, datname, state)
		}
	}
	if rows.Err() != nil {
		return
	}
	cols := make([]string, len(pgStatDatabaseCol))
	for i, col := range pgStatDatabaseCol {
		cols[i] = col.col + "::float8"
	}
	rows, err = conn.Query(ctx, "SELECT datid::text, datname, "+strings.Join(cols, ", ")+" FROM pg_stat_database WHERE datname IS NOT NULL")
	if err != nil {
		return
	}
	for rows.Next() {
		vals := make([]float64, len(cols))
		var datid, datname string
		dest := []any{&datid, &datname}
		for i := range vals {
			dest = append(dest, &vals[i])
		}
		if rows.Scan(dest...) != nil {
			continue
		}
		for i, col := range pgStatDatabaseCol {
			t := prometheus.CounterValue
			if col.gauge {
				t = prometheus.GaugeValue
			}
			ch <- prometheus.MustNewConstMetric(desc("pg_stat_database_"+col.col, col.help, "datid", "datname"), t, vals[i], datid, datname)
		}
	}
	if rows.Err() != nil {
		return
	}
	rows, err = conn.Query(ctx, "SELECT datname, pg_database_size(datname)::float8 FROM pg_database WHERE NOT datistemplate")
	if err != nil {
		return
	}
	for rows.Next() {
		var datname string
		var size float64
		if rows.Scan(&datname, &size) == nil {
			ch <- prometheus.MustNewConstMetric(pgDatabaseSize, prometheus.GaugeValue, size, datname)
		}
	}
	if rows.Err() != nil {
		return
	}
	var maxConn, start float64
	if err := conn.QueryRow(ctx, "SELECT current_setting('max_connections')::float8, EXTRACT(EPOCH FROM pg_postmaster_start_time())::float8").Scan(&maxConn, &start); err != nil {
		return
	}
	ch <- prometheus.MustNewConstMetric(pgMaxConnections, prometheus.GaugeValue, maxConn)
	ch <- prometheus.MustNewConstMetric(pgStartTime, prometheus.GaugeValue, start)
	rows, err = conn.Query(ctx, `SELECT application_name, COALESCE(host(client_addr), ''), COALESCE(state, ''),
		COALESCE(pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn), 0)::float8 FROM pg_stat_replication`)
	if err != nil {
		return
	}
	for rows.Next() {
		var app, addr, state string
		var lag float64
		if rows.Scan(&app, &addr, &state, &lag) == nil {
			ch <- prometheus.MustNewConstMetric(pgReplicationLag, prometheus.GaugeValue, lag, app, addr, state)
		}
	}
	if rows.Err() != nil {
		return
	}
	up = 1
}

// redisInfo maps INFO fields to redis_exporter's metric names.
var redisInfo = []struct {
	field, name string
	counter     bool
	help        string
}{
	{"uptime_in_seconds", "redis_uptime_in_seconds", false, "Seconds since the server started."},
	{"connected_clients", "redis_connected_clients", false, "Client connections."},
	{"blocked_clients", "redis_blocked_clients", false, "Clients blocked on a command."},
	{"used_memory", "redis_memory_used_bytes", false, "Memory allocated by Redis."},
	{"maxmemory", "redis_memory_max_bytes", false, "The maxmemory setting (0: no limit)."},
	{"total_connections_received", "redis_connections_received_total", true, "Connections accepted."},
	{"total_commands_processed", "redis_commands_processed_total", true, "Commands processed."},
	{"expired_keys", "redis_expired_keys_total", true, "Keys expired."},
	{"evicted_keys", "redis_evicted_keys_total", true, "Keys evicted for maxmemory."},
	{"keyspace_hits", "redis_keyspace_hits_total", true, "Successful key lookups."},
	{"keyspace_misses", "redis_keyspace_misses_total", true, "Failed key lookups."},
	{"connected_slaves", "redis_connected_slaves", false, "Connected replicas."},
	{"master_repl_offset", "redis_master_repl_offset", false, "The primary's replication offset: a replica's lag is this minus its own."},
	{"rdb_last_save_time", "redis_rdb_last_save_timestamp_seconds", false, "When the last snapshot was saved."},
	{"rdb_changes_since_last_save", "redis_rdb_changes_since_last_save", false, "Changes since the last snapshot."},
}

var (
	redisUp           = desc("redis_up", "Whether the last scrape of Redis succeeded.")
	redisDBKeys       = desc("redis_db_keys", "Keys in the database.", "db")
	redisDBKeysExpire = desc("redis_db_keys_expiring", "Keys with an expiry in the database.", "db")
)

type redisCollector struct{ db *Database }

func (c redisCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- redisUp
	ch <- redisDBKeys
	ch <- redisDBKeysExpire
	for _, f := range redisInfo {
		ch <- desc(f.name, f.help)
	}
}

func (c redisCollector) Collect(ch chan<- prometheus.Metric) {
	if !c.db.isReady() {
		return // the port and credentials are known once it is
	}
	ctx, cancel := context.WithTimeout(context.Background(), scrapeTimeout)
	defer cancel()
	client := redisKind{}.client(c.db, c.db.admin)
	defer client.Close()
	info, err := client.Info(ctx, "all").Result()
	if err != nil {
		ch <- prometheus.MustNewConstMetric(redisUp, prometheus.GaugeValue, 0)
		return
	}
	ch <- prometheus.MustNewConstMetric(redisUp, prometheus.GaugeValue, 1)
	fields := map[string]string{}
	for _, line := range strings.Split(info, "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(line), ":")
		if !ok {
			continue
		}
		fields[k] = v
		// db0:keys=3,expires=0,avg_ttl=0
		if strings.HasPrefix(k, "db") {
			for _, kv := range strings.Split(v, ",") {
				name, n, _ := strings.Cut(kv, "=")
				f, err := strconv.ParseFloat(n, 64)
				if err != nil {
					continue
				}
				switch name {
				case "keys":
					ch <- prometheus.MustNewConstMetric(redisDBKeys, prometheus.GaugeValue, f, k)
				case "expires":
					ch <- prometheus.MustNewConstMetric(redisDBKeysExpire, prometheus.GaugeValue, f, k)
				}
			}
		}
	}
	for _, f := range redisInfo {
		v, err := strconv.ParseFloat(fields[f.field], 64)
		if err != nil {
			continue
		}
		t := prometheus.GaugeValue
		if f.counter {
			t = prometheus.CounterValue
		}
		ch <- prometheus.MustNewConstMetric(desc(f.name, f.help), t, v)
	}
}
