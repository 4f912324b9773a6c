package parity

// System returns the rows of what nubo does for every system, whatever its
// spec writes: the production considerations of the architecture (an audit
// trail of every change, backup and restore of the whole system, cost).
// They have no field of the spec to match, so Report does not list them;
// `nubo validate` shows them after the spec's rows. Their Pattern is the
// command that shows them.
func System() []Row {
	return []Row{
		{Pattern: "nubo audit", Feature: "audit trail", Level: Local,
			Note: "every change (reloads, restarts, scaling, stops, publishes, invocations, redrives, secrets by name, backups, restores, deploys) in a hash-chained STATE/audit.jsonl, kept as long as observability.logs.retention; nubo audit verify",
			K8s:  "nubo deploy records to the local trail and annotates what it applies (nubo.dev/audit)"},
		{Pattern: "nubo backup", Feature: "backup and restore", Level: Local,
			Note: "one archive (age-encrypted with a key) of the streams, the event store, KV, the metrics, every database's dump, the CA and the secrets store; nubo restore into a stopped state folder",
			K8s:  "CronJob jetstream-backup (nats stream backup) and CloudNativePG ScheduledBackup for databases with backup.enabled"},
		{Pattern: "nubo cost", Feature: "cost", Level: Local,
			Note: "nubo:cost_per_hour recording rules from the cost section's prices; nubo cost with a monthly projection",
			K8s:  "PrometheusRule on cAdvisor's container series"},
	}
}
