// Package spec owns the nubo.yaml format: its Go types, loading with a position
// for every value, included files, defaults, validation and the JSON Schema for
// editors. Every other package reads an *App that Load has validated.
//
// Loading runs in named steps, each with its own tests: parse (goccy/go-yaml's
// parser, positions kept), merge included files, decode (every error at once, not
// only the first), defaults, then the validators. The decoder is nubo's own
// because goccy's stops at the first error and keeps no path-to-position index;
// the parser, where the hard part is, is goccy's.
package spec

// App is a whole nubo.yaml: one cloud-native system.
type App struct {
	// Name of the application; required, a DNS label: it is the default
	// namespace and prefixes the names of JetStream streams and dashboards.
	Name string `yaml:"name" required:"true" names:"dns"`
	// Namespace in Kubernetes, a DNS label; defaults to Name. Locally it is a label.
	Namespace string `yaml:"namespace" names:"dns"`
	// Include lists more files, relative to this one, merged into it.
	Include []string `yaml:"include"`

	// Config holds ConfigMaps: plain key/value strings.
	Config map[string]map[string]string `yaml:"config" names:"dns"`
	// Secrets declares secrets by name; values never live in the spec.
	Secrets map[string]*Secret `yaml:"secrets" names:"dns"`
	// Services are long-running processes (Deployments in Kubernetes).
	Services map[string]*Service `yaml:"services" names:"service"`
	// Mesh holds weighted routes and authorization policies between workloads.
	Mesh Mesh `yaml:"mesh"`
	// Ingress routes outside traffic by host and path.
	Ingress []*Ingress `yaml:"ingress"`
	// Databases are managed PostgreSQL and Redis instances.
	Databases map[string]*Database `yaml:"databases" names:"service"`
	// Functions scale from and to zero and are invoked with CloudEvents.
	Functions map[string]*Function `yaml:"functions" names:"service"`
	// Events declares event types by their CloudEvents type.
	Events map[string]*Event `yaml:"events" names:"eventType"`
	// Rules route events from the bus to targets, with filters and transforms.
	Rules map[string]*Rule `yaml:"rules" names:"dns"`
	// Queues are durable work queues with visibility timeouts and dead letters.
	Queues map[string]*Queue `yaml:"queues" names:"dns"`
	// Topics fan events out to subscriptions.
	Topics map[string]*Topic `yaml:"topics" names:"dns"`
	// Schedules fire events on cron expressions.
	Schedules map[string]*Schedule `yaml:"schedules" names:"dns"`
	// Gateway is the API gateway; nil when the spec has none.
	Gateway *Gateway `yaml:"gateway"`
	// EventStore is the event-sourcing store; nil when the spec has none.
	EventStore *EventStore `yaml:"eventStore"`
	// Observability configures metrics, logs, traces, alerts, dashboards and SLOs.
	Observability Observability `yaml:"observability"`
	// Cost is the price list of `nubo cost` and the cost series; nil without one.
	Cost *Cost `yaml:"cost"`
	// Local holds settings for `nubo up` only.
	Local Local `yaml:"local"`
	// Kubernetes holds settings for `nubo render` and `nubo deploy` only.
	Kubernetes Kubernetes `yaml:"kubernetes"`

	// Dir is the folder of the main spec file; relative paths start there.
	Dir string `yaml:"-"`
	// File is the main spec file as the user named it.
	File string `yaml:"-"`

	src      *source
	warnings Diagnostics
}

// Secret declares a secret: its keys and where `nubo up` finds their values.
type Secret struct {
	// Type is the Kubernetes Secret type.
	Type string `yaml:"type" enum:"opaque|tls|basic-auth|docker-registry"`
	// Keys the secret must have; a missing one stops `nubo up` before it starts anything.
	Keys []string `yaml:"keys"`
	// From says where local values come from; the first source with the key wins.
	From SecretFrom `yaml:"from"`
}

// SecretFrom lists the sources of a secret's values on a local run.
type SecretFrom struct {
	// Env reads KEY from the environment of `nubo up`. Default true.
	Env *bool `yaml:"env"`
	// File is a dotenv file, relative to the spec, kept out of git.
	File string `yaml:"file"`
}

// Local holds the settings of `nubo up`, ignored by `nubo render`.
type Local struct {
	// StateDir keeps the broker's, event store's, metrics', logs' and backups' data.
	StateDir string `yaml:"stateDir"`
	// Console is the address of the web console, admin API and query API.
	Console string `yaml:"console"`
	// Gateway is the address the API gateway listens on.
	Gateway string `yaml:"gateway"`
	// Ingress gives the ingress listeners.
	Ingress LocalIngress `yaml:"ingress"`
	// OTLP is the address of the OTLP/HTTP receiver for traces and logs.
	OTLP string `yaml:"otlp"`
	// Broker chooses the embedded NATS server or an existing one.
	Broker LocalBroker `yaml:"broker"`
	// Supervisor tunes process supervision. The defaults are Kubernetes' own;
	// shorter values make tests and demos quick.
	Supervisor LocalSupervisor `yaml:"supervisor"`
	// Databases says where the database servers are installed, when not
	// on PATH or in the usual package locations.
	Databases LocalDatabases `yaml:"databases"`
}

// LocalDatabases gives the folders that hold the database servers.
type LocalDatabases struct {
	// Postgres is the folder of postgres, initdb and the clients, searched first; relative to the spec.
	Postgres string `yaml:"postgres"`
	// Redis is the folder of redis-server (or valkey-server), searched first; relative to the spec.
	Redis string `yaml:"redis"`
}

// LocalSupervisor tunes restarts, autoscaling and resource sampling.
type LocalSupervisor struct {
	// Backoff is the first CrashLoopBackOff delay, doubled at each restart. Default 10s.
	Backoff Duration `yaml:"backoff"`
	// MaxBackoff caps the CrashLoopBackOff delay. Default 5m.
	MaxBackoff Duration `yaml:"maxBackoff"`
	// BackoffReset: a replica that ran this long restarts from Backoff again. Default 10m.
	BackoffReset Duration `yaml:"backoffReset"`
	// AutoscaleInterval is the time between autoscaling decisions. Default 15s.
	AutoscaleInterval Duration `yaml:"autoscaleInterval"`
	// ScaleDownStabilization: the highest recommendation over this window wins. Default 5m.
	ScaleDownStabilization Duration `yaml:"scaleDownStabilization"`
	// SampleInterval is the time between CPU and memory samples. Default 5s.
	SampleInterval Duration `yaml:"sampleInterval"`
}

// LocalIngress gives the addresses of the local ingress listeners.
type LocalIngress struct {
	// HTTP is the plain-HTTP listener address.
	HTTP string `yaml:"http"`
	// HTTPS is the TLS listener address, with certificates from the local CA.
	HTTPS string `yaml:"https"`
}

// LocalBroker chooses the NATS server that carries queues, topics and events.
type LocalBroker struct {
	// Embedded runs NATS JetStream inside nubo. Default true unless URL is set.
	Embedded *bool `yaml:"embedded"`
	// URL of an existing NATS server or cluster.
	URL string `yaml:"url"`
}

// Kubernetes holds the settings of `nubo render` and `nubo deploy`.
type Kubernetes struct {
	// Mesh is the service mesh the manifests target.
	Mesh string `yaml:"mesh" enum:"istio|none"`
	// Functions chooses Knative Services or plain Deployments for functions.
	Functions string `yaml:"functions" enum:"knative|deployment"`
	// Ingress chooses Ingress objects or Gateway API HTTPRoutes.
	Ingress string `yaml:"ingress" enum:"ingress|gateway-api"`
	// Monitoring chooses how metrics and rules are rendered.
	Monitoring string `yaml:"monitoring" enum:"prometheus-operator|none"`
	// ImagePullSecrets are the names of existing registry secrets.
	ImagePullSecrets []string `yaml:"imagePullSecrets" names:"subdomain"`
	// Labels are added to every rendered object.
	Labels map[string]string `yaml:"labels"`
}

// Pos returns where a field path was written, or the nearest parent's place:
// the engine and render use it to point at the spec in their own errors.
func (a *App) Pos(path string) Pos { return a.src.at(path) }

// Paths returns every field path written in the spec (and its includes), sorted.
func (a *App) Paths() []string { return sortedKeys(a.src.pos) }

// Files returns the spec's files: the main one first, then the included ones.
func (a *App) Files() []string { return append([]string(nil), a.src.files...) }
