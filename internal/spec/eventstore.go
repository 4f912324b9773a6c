package spec

// EventStore is the event-sourcing store: streams, projections and snapshots.
type EventStore struct {
	// Retention of events; 0s keeps them forever.
	Retention Duration `yaml:"retention"`
	// Encryption of events at rest.
	Encryption EventStoreEncryption `yaml:"encryption"`
	// Compression of stored events.
	Compression bool `yaml:"compression"`
	// Projections fold streams into read models.
	Projections map[string]*Projection `yaml:"projections" names:"dns"`
	// Snapshots store aggregates' state.
	Snapshots map[string]*Snapshot `yaml:"snapshots" names:"dns"`
}

// EventStoreEncryption encrypts stored events with a secret's key.
type EventStoreEncryption struct {
	// Enabled turns encryption on.
	Enabled bool `yaml:"enabled"`
	// Key is the secret holding the key.
	Key *SecretRef `yaml:"key"`
}

// Projection feeds matching events to a handler, with checkpoints.
type Projection struct {
	// Query selects the events.
	Query ProjectionQuery `yaml:"query"`
	// Handler is function:NAME or service:NAME/path.
	Handler Target `yaml:"handler" required:"true"`
	// BatchSize is the events per call. Default 100.
	BatchSize int `yaml:"batchSize" min:"0"`
	// Checkpoint stores the position every N events. Default 100.
	Checkpoint int `yaml:"checkpoint" min:"0"`
}

// ProjectionQuery selects events by stream pattern and type.
type ProjectionQuery struct {
	// Streams is a pattern; * matches any run of characters.
	Streams string `yaml:"streams"`
	// Types are event types; none: all.
	Types []string `yaml:"types"`
}

// Snapshot stores an aggregate's state every N events or some time.
type Snapshot struct {
	// Streams is a pattern; * matches any run of characters.
	Streams string `yaml:"streams" required:"true"`
	// Every is the events since the last snapshot.
	Every int `yaml:"every" min:"0"`
	// Frequency is the time since the last snapshot.
	Frequency Duration `yaml:"frequency"`
	// Handler returns the aggregate's state.
	Handler Target `yaml:"handler" required:"true"`
	// Retention of snapshots.
	Retention Duration `yaml:"retention"`
}
