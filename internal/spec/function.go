package spec

// Function is a serverless function: a process serving HTTP on $PORT that gets
// invocations as CloudEvents, scaled from and to zero.
type Function struct {
	// Runtime is informational locally; it picks the base image on Kubernetes.
	Runtime string `yaml:"runtime"`
	// Handler is informational: the SDK's entry point.
	Handler string `yaml:"handler"`
	// Image is what Kubernetes runs.
	Image string `yaml:"image"`
	// Run is what `nubo up` runs, through `sh -c`, in Dir.
	Run string `yaml:"run"`
	// Build runs once at start-up.
	Build string `yaml:"build"`
	// Dir is the working directory, relative to the spec.
	Dir string `yaml:"dir"`
	// Memory limit per instance.
	Memory Quantity `yaml:"memory"`
	// Timeout per invocation. Default 30s.
	Timeout Duration `yaml:"timeout"`
	// Concurrency is the invocations at once per instance. Default 1.
	Concurrency int `yaml:"concurrency" min:"0"`
	// Scaling bounds the instance pool.
	Scaling FunctionScaling `yaml:"scaling"`
	// Env sets environment variables; values may use ${...}.
	Env map[string]string `yaml:"env" names:"env"`
	// Layers are folders put on PATH and listed in NUBO_LAYERS.
	Layers []string `yaml:"layers"`
	// VPC restricts where the function may connect.
	VPC VPC `yaml:"vpc"`
	// Triggers invoke the function.
	Triggers []*Trigger `yaml:"triggers"`
	// Retry failed invocations before dead-lettering them.
	Retry FunctionRetry `yaml:"retry"`
	// DeadLetter is a queue for events that failed every attempt.
	DeadLetter string `yaml:"deadLetter"`
}

// FunctionScaling bounds a function's instance pool.
type FunctionScaling struct {
	// Min instances; 0 scales to zero. Default 0.
	Min int `yaml:"min" min:"0"`
	// Max instances. Default 10.
	Max int `yaml:"max" min:"0"`
	// IdleTimeout after which an idle instance stops. Default 60s.
	IdleTimeout Duration `yaml:"idleTimeout"`
}

// VPC is a function's network restriction.
type VPC struct {
	// Egress lists what the function may reach: service:NAME, database:NAME,
	// function:NAME or a host name.
	Egress []string `yaml:"egress"`
}

// Trigger invokes a function; exactly one of Queue, Topic, Schedule, HTTP and
// Event is set.
type Trigger struct {
	// Queue consumed.
	Queue string `yaml:"queue"`
	// Topic subscribed to.
	Topic string `yaml:"topic"`
	// Schedule is a cron expression or @every DURATION.
	Schedule string `yaml:"schedule"`
	// HTTP is a route on the engine (and the gateway's function integration).
	HTTP *HTTPTrigger `yaml:"http"`
	// Event matches events on the bus by source and type.
	Event *EventTrigger `yaml:"event"`
	// BatchSize is the events per invocation, for queue triggers. Default 1.
	BatchSize int `yaml:"batchSize" min:"0"`
	// Filter selects events, for topic and event triggers.
	Filter *Filter `yaml:"filter"`
	// Enabled turns the trigger on. Default true.
	Enabled *bool `yaml:"enabled"`
}

// HTTPTrigger is an HTTP route that invokes a function.
type HTTPTrigger struct {
	// Method matched. Default POST.
	Method string `yaml:"method" enum:"GET|HEAD|POST|PUT|PATCH|DELETE|OPTIONS"`
	// Path matched.
	Path string `yaml:"path" required:"true"`
}

// EventTrigger matches events on the bus.
type EventTrigger struct {
	// Source matched exactly; empty matches any.
	Source string `yaml:"source"`
	// Type matched exactly; empty matches any.
	Type string `yaml:"type"`
}

// FunctionRetry retries failed invocations with backoff.
type FunctionRetry struct {
	// Attempts after the first. Default 0.
	Attempts int `yaml:"attempts" min:"0"`
	// Backoff before the first retry, doubled each time. Default 1s.
	Backoff Duration `yaml:"backoff"`
}
