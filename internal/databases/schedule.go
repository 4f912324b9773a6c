package databases

import (
	"context"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/robfig/cron/v3"
)

// cronParser reads backup.schedule as spec validation does: five fields,
// or a descriptor (@daily, @every 6h).
var cronParser = cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// schedule starts the backup schedules of the databases that are ready and
// have backups enabled; a failure is reported, counted and can alert
// (nubo_database_backups_total{result="failure"}).
func (d *Databases) schedule() error {
	var c *cron.Cron
	for _, db := range d.list {
		b := db.spec.Backup
		if !b.Enabled || b.Schedule == "" {
			continue
		}
		if c == nil {
			c = cron.New(cron.WithParser(cronParser), cron.WithLocation(time.Local))
		}
		if _, err := c.AddFunc(b.Schedule, func() {
			select {
			case <-db.ready:
			default:
				return // a failed database has nothing to back up; its status says why
			}
			if bk, err := db.Backup(d.bgCtx); err != nil {
				db.notify(fmt.Sprintf("database %s: scheduled backup failed: %v", db.name, err))
			} else {
				db.notify(fmt.Sprintf("database %s: backed up to %s (%d bytes)", db.name, bk.Name, bk.Size))
			}
		}); err != nil {
			return fmt.Errorf("database %q: backup.schedule %q: %w", db.name, b.Schedule, err)
		}
	}
	if c != nil {
		c.Start()
		d.cron = c
	}
	return nil
}

// stopSchedule stops the schedules and waits for a backup in progress, or
// until ctx is done.
func (d *Databases) stopSchedule(ctx context.Context) {
	d.bgCancel()
	if d.cron == nil {
		return
	}
	select {
	case <-d.cron.Stop().Done():
	case <-ctx.Done():
	}
}

// metrics are the databases' own counters; the servers' metrics are the
// exporters' (see exporter.go).
type metrics struct {
	backups    *prometheus.CounterVec
	lastBackup *prometheus.GaugeVec
	refused    *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		backups: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "nubo_database_backups_total",
			Help: "Backups of a database, by result (success, failure).",
		}, []string{"database", "result"}),
		lastBackup: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "nubo_database_last_backup_timestamp_seconds",
			Help: "When the last successful backup of a database finished, in Unix seconds.",
		}, []string{"database"}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "nubo_database_connections_refused_total",
			Help: "Connections to a database refused by its allow-list (security.network.ingress), by calling workload.",
		}, []string{"database", "workload"}),
	}
	if reg != nil {
		reg.MustRegister(m.backups, m.lastBackup, m.refused)
	}
	return m
}

func (m *metrics) backupDone(db string, err error) {
	if err != nil {
		m.backups.WithLabelValues(db, "failure").Inc()
		return
	}
	m.backups.WithLabelValues(db, "success").Inc()
	m.lastBackup.WithLabelValues(db).SetToCurrentTime()
}
