package spec

// Database is a managed PostgreSQL or Redis instance.
type Database struct {
	// Type of the database.
	Type string `yaml:"type" required:"true" enum:"postgres|redis"`
	// Version of the server, e.g. "16" or "7".
	Version string `yaml:"version"`
	// Replicas: one primary plus streaming replicas. Default 1.
	Replicas int `yaml:"replicas" min:"0"`
	// Storage of each instance.
	Storage Storage `yaml:"storage"`
	// Backup schedules backups.
	Backup Backup `yaml:"backup"`
	// Monitoring exports metrics and adds alert rules.
	Monitoring DatabaseMonitoring `yaml:"monitoring"`
	// Security holds encryption, roles and network access.
	Security DatabaseSecurity `yaml:"security"`
}

// Storage is a database's volume.
type Storage struct {
	// Size of the volume. Default 1Gi.
	Size Quantity `yaml:"size"`
	// Class is the Kubernetes storage class.
	Class string `yaml:"class"`
	// AccessMode of the volume. Default ReadWriteOnce.
	AccessMode string `yaml:"accessMode" enum:"ReadWriteOnce|ReadWriteMany|ReadOnlyMany|ReadWriteOncePod"`
	// Persistent keeps data across restarts of `nubo up`. Default true.
	Persistent *bool `yaml:"persistent"`
}

// Backup schedules backups and keeps a number of them.
type Backup struct {
	// Enabled turns scheduled backups on.
	Enabled bool `yaml:"enabled"`
	// Schedule is a 5-field cron expression or @every DURATION.
	Schedule string `yaml:"schedule"`
	// Retention is the number of backups kept. Default 7.
	Retention int `yaml:"retention" min:"0"`
	// Destination is a folder locally, s3://bucket/path on Kubernetes.
	Destination string `yaml:"destination"`
}

// DatabaseMonitoring exports a database's metrics and alerts on them.
type DatabaseMonitoring struct {
	// Enabled runs the exporter.
	Enabled bool `yaml:"enabled"`
	// Alerts are PromQL alert rules on the database's metrics.
	Alerts []*AlertRule `yaml:"alerts"`
}

// DatabaseSecurity holds encryption, access control and network policy.
type DatabaseSecurity struct {
	// Encryption at rest and in transit.
	Encryption Encryption `yaml:"encryption"`
	// Access holds roles and their grants.
	Access DatabaseAccess `yaml:"access"`
	// Network lists who may connect.
	Network NetworkPolicy `yaml:"network"`
}

// Encryption says what is encrypted and with which key.
type Encryption struct {
	// AtRest encrypts backups locally and uses an encrypted storage class in Kubernetes.
	AtRest bool `yaml:"atRest"`
	// InTransit serves TLS with a certificate from the local CA or cert-manager.
	InTransit bool `yaml:"inTransit"`
	// Key is the secret holding the encryption key.
	Key *SecretRef `yaml:"key"`
}

// SecretRef names a secret of the secrets section.
type SecretRef struct {
	// Secret is the secret's name.
	Secret string `yaml:"secret" required:"true"`
}

// DatabaseAccess holds database roles.
type DatabaseAccess struct {
	// RBAC creates the roles and grants.
	RBAC bool `yaml:"rbac"`
	// Roles and the services that use them.
	Roles []*DatabaseRole `yaml:"roles"`
}

// DatabaseRole is a database role granted to services.
type DatabaseRole struct {
	// Name of the role: a PostgreSQL identifier, which also names the
	// role's Secret on Kubernetes (DB-role-NAME, '_' written '-').
	Name string `yaml:"name" required:"true" names:"role"`
	// Grants given to the role.
	Grants []string `yaml:"grants" enum:"readonly|readwrite|admin"`
	// Services whose connection URL uses this role.
	Services []string `yaml:"services"`
}

// NetworkPolicy lists who may connect; everything else is refused.
type NetworkPolicy struct {
	// Ingress rules.
	Ingress []*NetworkRule `yaml:"ingress"`
}

// NetworkRule allows sources to reach ports.
type NetworkRule struct {
	// From lists the allowed sources.
	From []*NetworkPeer `yaml:"from"`
	// Ports allowed.
	Ports []*NetworkPort `yaml:"ports"`
}

// NetworkPeer is a workload allowed to connect.
type NetworkPeer struct {
	// Service name.
	Service string `yaml:"service"`
	// Function name.
	Function string `yaml:"function"`
}

// NetworkPort is a port and protocol.
type NetworkPort struct {
	// Protocol of the port. Default TCP.
	Protocol string `yaml:"protocol" enum:"TCP|UDP|SCTP"`
	// Port number.
	Port int `yaml:"port" required:"true" min:"1" max:"65535"`
}
