package spec

// Event declares a CloudEvents type and the JSON Schema of its data.
type Event struct {
	// Source is the usual CloudEvents source of this type.
	Source string `yaml:"source"`
	// Version of the schema, carried in dataschema.
	Version string `yaml:"version"`
	// Schema is the JSON Schema of data; a publish that breaks it is refused.
	Schema any `yaml:"schema"`
}

// Rule routes matching events from the bus to a target.
type Rule struct {
	// Filter selects events; none matches all.
	Filter *Filter `yaml:"filter"`
	// Transform is a jq program whose result becomes data.
	Transform string `yaml:"transform"`
	// Target receives the events.
	Target Target `yaml:"target" required:"true"`
	// Enabled turns the rule on. Default true.
	Enabled *bool `yaml:"enabled"`
}

// Filter is a CloudEvents subscription filter (the dialects of the CloudEvents
// Subscriptions API) plus jq. The set dialects must all hold.
type Filter struct {
	// Exact matches attributes exactly.
	Exact map[string]string `yaml:"exact"`
	// Prefix matches attributes by prefix.
	Prefix map[string]string `yaml:"prefix"`
	// Suffix matches attributes by suffix.
	Suffix map[string]string `yaml:"suffix"`
	// All holds when every filter holds.
	All []*Filter `yaml:"all"`
	// Any holds when one filter holds.
	Any []*Filter `yaml:"any"`
	// Not holds when its filter does not.
	Not *Filter `yaml:"not"`
	// SQL is a CloudEvents SQL (CESQL) expression over attributes.
	SQL string `yaml:"sql"`
	// JQ is a jq predicate over the whole event (nubo's addition).
	JQ string `yaml:"jq"`
}

// Queue is a durable work queue.
type Queue struct {
	// Type: standard, or fifo (ordered per subject, one in flight per subject).
	Type string `yaml:"type" enum:"standard|fifo"`
	// Visibility: an event not acknowledged by then is delivered again. Default 30s.
	Visibility Duration `yaml:"visibility"`
	// Retention is the maximum age of an event. Default 96h.
	Retention Duration `yaml:"retention"`
	// DeadLetter moves events that failed MaxReceive deliveries to another queue.
	DeadLetter *DeadLetter `yaml:"deadLetter"`
}

// DeadLetter names the queue for events that failed too often.
type DeadLetter struct {
	// Queue receiving the dead letters.
	Queue string `yaml:"queue" required:"true"`
	// MaxReceive is the deliveries before an event is dead-lettered. Default 5.
	MaxReceive int `yaml:"maxReceive" min:"0"`
}

// Topic fans events out to its subscriptions.
type Topic struct {
	// Subscriptions, each with its own durable consumer.
	Subscriptions []*Subscription `yaml:"subscriptions"`
}

// Subscription delivers a topic's events to an endpoint.
type Subscription struct {
	// Endpoint is the target.
	Endpoint Target `yaml:"endpoint" required:"true"`
	// Filter selects events.
	Filter *Filter `yaml:"filter"`
	// Protocol of the endpoint; default from the endpoint's form.
	Protocol string `yaml:"protocol" enum:"http|queue|function|service|topic"`
	// BatchSize is the events per delivery. Default 1.
	BatchSize int `yaml:"batchSize" min:"0"`
}

// Schedule fires an event on a cron expression.
type Schedule struct {
	// Expression is a 5-field cron expression or @every DURATION.
	Expression string `yaml:"expression" required:"true"`
	// Target receives the nubo.schedule events.
	Target Target `yaml:"target" required:"true"`
	// Payload is the data of each event.
	Payload any `yaml:"payload"`
	// Enabled turns the schedule on. Default true.
	Enabled *bool `yaml:"enabled"`
}
