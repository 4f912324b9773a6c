package spec

// Service is a long-running workload: supervised processes locally, a Deployment
// and a Service in Kubernetes.
type Service struct {
	// Image is what Kubernetes runs.
	Image string `yaml:"image"`
	// Run is what `nubo up` runs, through `sh -c`, in Dir.
	Run string `yaml:"run"`
	// Build runs once before the first start (and again on a watched change).
	Build string `yaml:"build"`
	// Dir is the working directory, relative to the spec; default the spec's folder.
	Dir string `yaml:"dir"`
	// Port the process listens on in Kubernetes; locally each replica gets $PORT.
	Port int `yaml:"port" min:"0" max:"65535"`
	// Replicas is the number of processes; default 1, scaling.min while scaling is set.
	Replicas *int `yaml:"replicas" min:"0"`
	// Resources requested per replica; the base of autoscaling percentages.
	Resources Resources `yaml:"resources"`
	// Env sets environment variables; values may use ${...}.
	Env map[string]string `yaml:"env" names:"env"`
	// EnvFrom turns every key of the named ConfigMaps and Secrets into variables.
	EnvFrom EnvFrom `yaml:"envFrom"`
	// DependsOn names services, databases and functions that must be ready first.
	DependsOn []string `yaml:"dependsOn"`
	// Restart is the restart policy, with CrashLoopBackOff between restarts.
	Restart string `yaml:"restart" enum:"always|on-failure|never"`
	// Watch lists paths whose change reruns Build and rolls the replicas.
	Watch []string `yaml:"watch"`
	// StopGracePeriod is the time between SIGTERM and SIGKILL. Default 30s.
	StopGracePeriod Duration `yaml:"stopGracePeriod"`
	// Health holds the liveness, readiness and startup probes.
	Health Health `yaml:"health"`
	// Scaling turns on horizontal autoscaling.
	Scaling *Scaling `yaml:"scaling"`
	// Expose describes the Service object callers reach.
	Expose Expose `yaml:"expose"`
	// Traffic is how callers reach this service through the mesh.
	Traffic Traffic `yaml:"traffic"`
	// GRPC says the port speaks HTTP/2 cleartext (h2c) or gRPC.
	GRPC bool `yaml:"grpc"`
}

// Resources are Kubernetes quantities requested per replica.
type Resources struct {
	// CPU in cores: 500m, 2.
	CPU Quantity `yaml:"cpu"`
	// Memory in bytes: 512Mi, 1Gi.
	Memory Quantity `yaml:"memory"`
}

// EnvFrom names ConfigMaps and Secrets whose keys become environment variables.
type EnvFrom struct {
	// Config names entries of the top-level config section.
	Config []string `yaml:"config"`
	// Secrets names entries of the top-level secrets section.
	Secrets []string `yaml:"secrets"`
}

// Health holds a service's probes, with Kubernetes semantics.
type Health struct {
	// Liveness failing restarts the replica.
	Liveness *Probe `yaml:"liveness"`
	// Readiness failing takes the replica out of load balancing.
	Readiness *Probe `yaml:"readiness"`
	// Startup gates liveness and readiness until it has passed once.
	Startup *Probe `yaml:"startup"`
}

// Probe is one health check: exactly one of HTTP, TCP and Exec.
type Probe struct {
	// HTTP probes succeed on a status from 200 to 399.
	HTTP *HTTPProbe `yaml:"http"`
	// TCP probes succeed when the port accepts a connection.
	TCP *TCPProbe `yaml:"tcp"`
	// Exec probes succeed when the command exits 0.
	Exec *ExecProbe `yaml:"exec"`
	// InitialDelay before the first probe. Default 0s.
	InitialDelay Duration `yaml:"initialDelay"`
	// Period between probes. Default 10s.
	Period Duration `yaml:"period"`
	// Timeout of one probe. Default 1s.
	Timeout Duration `yaml:"timeout"`
	// FailureThreshold is the failures in a row that count as failed. Default 3.
	FailureThreshold int `yaml:"failureThreshold" min:"0"`
	// SuccessThreshold is the successes in a row that count as passed. Default 1.
	SuccessThreshold int `yaml:"successThreshold" min:"0"`
}

// HTTPProbe is a GET of Path on Port.
type HTTPProbe struct {
	// Path requested. Default /.
	Path string `yaml:"path"`
	// Port probed; default the service's port ($PORT locally).
	Port int `yaml:"port" min:"0" max:"65535"`
	// Headers sent with the probe.
	Headers map[string]string `yaml:"headers"`
}

// TCPProbe opens a connection to Port.
type TCPProbe struct {
	// Port probed; default the service's port ($PORT locally).
	Port int `yaml:"port" min:"0" max:"65535"`
}

// ExecProbe runs Command in the service's directory and environment.
type ExecProbe struct {
	// Command and its arguments, not through a shell.
	Command []string `yaml:"command" required:"true"`
}

// Scaling is horizontal autoscaling with the Kubernetes HPA algorithm.
type Scaling struct {
	// Min replicas. Default 1.
	Min int `yaml:"min" min:"0"`
	// Max replicas; required.
	Max int `yaml:"max" required:"true" min:"1"`
	// TargetCPU is the target utilization in percent of resources.cpu.
	TargetCPU int `yaml:"targetCPU" min:"0"`
	// TargetMemory is the target utilization in percent of resources.memory.
	TargetMemory int `yaml:"targetMemory" min:"0"`
}

// Expose describes the Kubernetes Service of a service.
type Expose struct {
	// Type of the Service. Default ClusterIP.
	Type string `yaml:"type" enum:"ClusterIP|NodePort|LoadBalancer"`
	// Port callers use; the target port is the service's port. Default 80.
	Port int `yaml:"port" min:"0" max:"65535"`
}

// Traffic is the client-side policy callers get through the mesh.
type Traffic struct {
	// LoadBalancing picks a replica for each request.
	LoadBalancing LoadBalancing `yaml:"loadBalancing"`
	// CircuitBreaker ejects failing replicas (outlier detection).
	CircuitBreaker *CircuitBreaker `yaml:"circuitBreaker"`
	// Retry retries failed requests.
	Retry *Retry `yaml:"retry"`
	// Timeout bounds a whole request, retries included.
	Timeout Duration `yaml:"timeout"`
	// Fault injects delays and aborts, for resilience testing.
	Fault *Fault `yaml:"fault"`
}

// LoadBalancing chooses the algorithm over ready replicas.
type LoadBalancing struct {
	// Algorithm over ready replicas. Default round_robin; ring_hash when sticky is set.
	Algorithm string `yaml:"algorithm" enum:"round_robin|least_request|random|ring_hash"`
	// Sticky keeps a client on one replica, by header or cookie.
	Sticky *Sticky `yaml:"sticky"`
}

// Sticky sessions hash a header or a cookie; exactly one is set.
type Sticky struct {
	// Header whose value is hashed.
	Header string `yaml:"header"`
	// Cookie whose value is hashed; set on the first response when absent.
	Cookie *StickyCookie `yaml:"cookie"`
}

// StickyCookie names the cookie of a sticky session.
type StickyCookie struct {
	// Name of the cookie.
	Name string `yaml:"name" required:"true"`
	// TTL of the cookie.
	TTL Duration `yaml:"ttl"`
}

// CircuitBreaker is Envoy's outlier detection, per replica.
type CircuitBreaker struct {
	// ConsecutiveErrors (5xx or connect failures) that eject a replica. Default 5.
	ConsecutiveErrors int `yaml:"consecutiveErrors" min:"0"`
	// Interval between ejection sweeps. Default 10s.
	Interval Duration `yaml:"interval"`
	// Timeout is the base ejection time; repeated ejections last longer. Default 30s.
	Timeout Duration `yaml:"timeout"`
	// MaxEjectionPercent of replicas ejected at once. Default 50.
	MaxEjectionPercent int `yaml:"maxEjectionPercent" min:"0" max:"100"`
}

// Retry retries failed requests with jittered exponential backoff.
type Retry struct {
	// Attempts after the first try. Default 2.
	Attempts int `yaml:"attempts" min:"0"`
	// PerTryTimeout bounds each try.
	PerTryTimeout Duration `yaml:"perTryTimeout"`
	// On lists the conditions that trigger a retry.
	On []string `yaml:"on" enum:"5xx|gateway-error|connect-failure|reset|retriable-4xx"`
}

// Fault injects delays and aborts into a percentage of requests.
type Fault struct {
	// Delay holds requests before they are forwarded.
	Delay *FaultDelay `yaml:"delay"`
	// Abort answers requests with a status instead of forwarding them.
	Abort *FaultAbort `yaml:"abort"`
}

// FaultDelay delays a percentage of requests by a fixed time.
type FaultDelay struct {
	// Percent of requests delayed, 0 to 100.
	Percent float64 `yaml:"percent" min:"0" max:"100"`
	// Fixed delay.
	Fixed Duration `yaml:"fixed" required:"true"`
}

// FaultAbort aborts a percentage of requests with a status.
type FaultAbort struct {
	// Percent of requests aborted, 0 to 100.
	Percent float64 `yaml:"percent" min:"0" max:"100"`
	// Status answered, 200 to 599.
	Status int `yaml:"status" required:"true" min:"200" max:"599"`
}
