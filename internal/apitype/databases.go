package apitype

import "time"

// Database is one database of the spec, as nubo up runs it.
type Database struct {
	// Name names the database in the spec.
	Name string `json:"name"`
	// Type is "postgres" or "redis".
	Type string `json:"type"`
	// Version is the server's version as it reports it ("15.18"); empty
	// until the server is found.
	Version string `json:"version,omitempty"`
	// State is "starting", "ready" or "failed".
	State string `json:"state"`
	// Message says why a database failed, in one line.
	Message string `json:"message,omitempty"`
	// Role is the server's role in replication: "primary" today.
	Role string `json:"role"`
	// PID is the server's process id, 0 when it is not running.
	PID int `json:"pid,omitempty"`
	// Port is the loopback port the server listens on.
	Port int `json:"port,omitempty"`
	// Restarts counts restarts of the server by the supervisor.
	Restarts int `json:"restarts"`
	// TLS says whether the server accepts only TLS, with a certificate
	// from the local CA (security.encryption.inTransit).
	TLS bool `json:"tls,omitempty"`
	// Persistent says whether the data is kept across runs.
	Persistent bool `json:"persistent"`
	// Dir is the database's folder under the state directory.
	Dir string `json:"dir,omitempty"`
	// LastBackup is the newest backup, nil before the first.
	LastBackup *Backup `json:"lastBackup,omitempty"`
	// Replicas are the streaming replicas (PostgreSQL, replicas > 1).
	Replicas []DatabaseReplica `json:"replicas,omitempty"`
}

// DatabaseReplica is one streaming replica of a database.
type DatabaseReplica struct {
	// Name names the replica's process: NAME-replica-1, ...
	Name string `json:"name"`
	// State is "starting", "streaming" or "failed".
	State string `json:"state"`
	// Message says why a replica failed.
	Message string `json:"message,omitempty"`
	// PID is the replica server's process id.
	PID int `json:"pid,omitempty"`
	// Port is its loopback port.
	Port int `json:"port,omitempty"`
	// Restarts counts restarts by the supervisor.
	Restarts int `json:"restarts"`
}

// Backup is one backup of a database.
type Backup struct {
	// Name names the backup file, unique per database.
	Name string `json:"name"`
	// Time is when the backup was taken.
	Time time.Time `json:"time"`
	// Size is the file's size in bytes.
	Size int64 `json:"size"`
	// Encrypted says whether the file is encrypted with age.
	Encrypted bool `json:"encrypted,omitempty"`
}
