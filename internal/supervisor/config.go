package supervisor

import (
	"errors"
	"fmt"
	"strings"
	"syscall"
	"time"

	"github.com/nubo-dev/nubo/internal/apitype"
)

// Defaults, in one place. They are Kubernetes' own values unless noted.
const (
	// DefaultStopGracePeriod is terminationGracePeriodSeconds' default.
	DefaultStopGracePeriod = 30 * time.Second
	// DefaultBackoffBase is the kubelet's first CrashLoopBackOff delay.
	DefaultBackoffBase = 10 * time.Second
	// DefaultBackoffMax is the kubelet's CrashLoopBackOff cap.
	DefaultBackoffMax = 5 * time.Minute
	// DefaultBackoffReset is how long a container must run before the kubelet
	// forgets its crash history.
	DefaultBackoffReset = 10 * time.Minute
	// DefaultProbePeriod is periodSeconds' default.
	DefaultProbePeriod = 10 * time.Second
	// DefaultProbeTimeout is timeoutSeconds' default.
	DefaultProbeTimeout = time.Second
	// DefaultFailureThreshold is failureThreshold's default.
	DefaultFailureThreshold = 3
	// DefaultSuccessThreshold is successThreshold's default.
	DefaultSuccessThreshold = 1
	// DefaultSampleInterval is how often resource usage is read from /proc.
	// Not a Kubernetes value: metrics-server scrapes every 15s, but nubo status
	// should feel live.
	DefaultSampleInterval = 5 * time.Second
)

// ServiceConfig is what the supervisor needs to run one service. The engine
// maps a spec service to it; the supervisor does not know the spec.
type ServiceConfig struct {
	// Name names the service in errors, events and output lines.
	Name string
	// Command is run as `/bin/sh -c Command` in Dir.
	Command string
	// Dir is the working directory; empty means the current directory.
	Dir string
	// Env holds extra KEY=VALUE entries added to os.Environ(). PORT,
	// NUBO_REPLICA and NUBO_SERVICE are set by the supervisor and win.
	Env []string
	// Replicas is the number of replicas Start runs. Zero is valid and runs
	// none, as a Deployment scaled to zero.
	Replicas int
	// Port is the port the service declares. It is informational (each
	// replica gets its own free loopback port in $PORT), but when it is set
	// and there is no readiness probe, a replica is ready once its $PORT
	// accepts TCP connections. When zero, a replica without a readiness
	// probe is ready once started, as in Kubernetes.
	Port int
	// Restart is the restart policy; empty means Always.
	Restart RestartPolicy
	// StopGracePeriod is the time between SIGTERM and SIGKILL when a replica
	// is stopped; zero means DefaultStopGracePeriod.
	StopGracePeriod time.Duration
	// Liveness restarts a replica whose probe fails FailureThreshold times.
	Liveness *Probe
	// Readiness decides whether a replica is Ready.
	Readiness *Probe
	// Startup gates Liveness and Readiness until it succeeds once, and kills
	// the replica if it fails FailureThreshold times.
	Startup *Probe
	// Backoff is the CrashLoopBackOff schedule between restarts.
	Backoff Backoff
	// StopSignal is the signal that asks a replica to stop before SIGKILL;
	// zero means SIGTERM. PostgreSQL's fast shutdown is SIGINT (its
	// SIGTERM waits for every client to disconnect).
	StopSignal syscall.Signal
	// Credential runs the replicas as another user and group; nil runs
	// them as nubo. nubo sets it for servers that refuse to run as root.
	Credential *syscall.Credential
}

// RestartPolicy says when an exited replica is started again.
type RestartPolicy string

// Restart policies, as in a Pod's restartPolicy.
const (
	// RestartAlways restarts a replica whatever its exit status.
	RestartAlways RestartPolicy = "Always"
	// RestartOnFailure restarts a replica that exited non-zero or was killed
	// by a signal or a failing probe.
	RestartOnFailure RestartPolicy = "OnFailure"
	// RestartNever leaves an exited replica exited.
	RestartNever RestartPolicy = "Never"
)

// Backoff is the CrashLoopBackOff schedule: the first restart waits Base,
// each further one twice the previous, up to Max. A replica that ran for
// Reset before exiting starts again from Base. Zero fields take the
// kubelet's defaults (10s, 5m, 10m).
type Backoff struct {
	// Base is the first delay.
	Base time.Duration
	// Max caps the delay.
	Max time.Duration
	// Reset is the run time after which the crash history is forgotten.
	Reset time.Duration
}

// Probe is a Kubernetes probe: exactly one of HTTP, TCP and Exec is set.
// Zero durations and thresholds take Kubernetes' defaults.
type Probe struct {
	// HTTP probes with a GET; status 200-399 is success.
	HTTP *HTTPProbe
	// TCP probes by opening a connection.
	TCP *TCPProbe
	// Exec probes by running a command; exit 0 is success.
	Exec *ExecProbe
	// InitialDelay is the time after the process starts before the first
	// probe.
	InitialDelay time.Duration
	// Period is the time between probes (default 10s).
	Period time.Duration
	// Timeout bounds one probe (default 1s).
	Timeout time.Duration
	// FailureThreshold is the number of consecutive failures that make the
	// probe fail (default 3).
	FailureThreshold int
	// SuccessThreshold is the number of consecutive successes that make the
	// probe succeed after a failure (default 1; must be 1 for liveness and
	// startup, as in Kubernetes).
	SuccessThreshold int
}

// HTTPProbe is an httpGet probe against 127.0.0.1.
type HTTPProbe struct {
	// Path is the request path; empty means "/".
	Path string
	// Port is the port to probe; zero or ServiceConfig.Port means the
	// replica's $PORT.
	Port int
	// Scheme is "http" (default) or "https". As in Kubernetes, https
	// probes do not verify certificates.
	Scheme string
	// Headers are added to the probe request (httpHeaders in Kubernetes).
	Headers map[string]string
}

// TCPProbe is a tcpSocket probe against 127.0.0.1.
type TCPProbe struct {
	// Port is the port to connect to; zero or ServiceConfig.Port means the
	// replica's $PORT.
	Port int
}

// ExecProbe runs a command (argv, no shell) in the service's Dir with the
// replica's environment.
type ExecProbe struct {
	// Command is the argv; Command[0] is looked up in $PATH.
	Command []string
}

// ProbeKind names one of a replica's three probes (apitype.ProbeKind).
type ProbeKind = apitype.ProbeKind

// Probe kinds.
const (
	ProbeStartup   = apitype.ProbeStartup
	ProbeLiveness  = apitype.ProbeLiveness
	ProbeReadiness = apitype.ProbeReadiness
)

// normalize returns a copy of cfg with defaults filled and every problem
// found, joined, so that a user sees all of them at once.
func normalize(cfg ServiceConfig) (ServiceConfig, error) {
	cfg = cfg.clone()
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }

	if cfg.Name == "" {
		return cfg, errors.New("service: name is empty")
	}
	if strings.TrimSpace(cfg.Command) == "" {
		bad("command is empty")
	}
	if cfg.Replicas < 0 {
		bad("replicas %d is negative", cfg.Replicas)
	}
	if cfg.Port < 0 || cfg.Port > 65535 {
		bad("port %d is out of range", cfg.Port)
	}
	switch cfg.Restart {
	case "":
		cfg.Restart = RestartAlways
	case RestartAlways, RestartOnFailure, RestartNever:
	default:
		bad("restart policy %q is not Always, OnFailure or Never", cfg.Restart)
	}
	switch {
	case cfg.StopGracePeriod < 0:
		bad("stop grace period %v is negative", cfg.StopGracePeriod)
	case cfg.StopGracePeriod == 0:
		cfg.StopGracePeriod = DefaultStopGracePeriod
	}
	for _, kv := range cfg.Env {
		if k, _, ok := strings.Cut(kv, "="); !ok || k == "" {
			bad("env entry %q is not KEY=VALUE", kv)
		}
	}

	b := &cfg.Backoff
	if b.Base < 0 || b.Max < 0 || b.Reset < 0 {
		bad("backoff durations must not be negative")
	}
	if b.Base == 0 {
		b.Base = DefaultBackoffBase
	}
	if b.Max == 0 {
		b.Max = max(DefaultBackoffMax, b.Base)
	}
	if b.Reset == 0 {
		b.Reset = DefaultBackoffReset
	}
	if b.Max < b.Base {
		bad("backoff max %v is less than base %v", b.Max, b.Base)
	}

	for _, p := range []struct {
		kind ProbeKind
		ptr  **Probe
	}{{ProbeStartup, &cfg.Startup}, {ProbeLiveness, &cfg.Liveness}, {ProbeReadiness, &cfg.Readiness}} {
		if *p.ptr == nil {
			continue
		}
		np, err := normalizeProbe(p.kind, **p.ptr)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s probe: %w", p.kind, err))
		}
		*p.ptr = &np
	}

	if err := errors.Join(errs...); err != nil {
		return cfg, fmt.Errorf("service %q: %w", cfg.Name, err)
	}
	return cfg, nil
}

func normalizeProbe(kind ProbeKind, p Probe) (Probe, error) {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }

	n := 0
	if p.HTTP != nil {
		n++
		h := p.HTTP
		if h.Path == "" {
			h.Path = "/"
		}
		if !strings.HasPrefix(h.Path, "/") {
			bad("http path %q does not start with /", h.Path)
		}
		switch h.Scheme {
		case "":
			h.Scheme = "http"
		case "http", "https":
		case "HTTP", "HTTPS": // the Kubernetes spelling
			h.Scheme = strings.ToLower(h.Scheme)
		default:
			bad("http scheme %q is not http or https", h.Scheme)
		}
		if h.Port < 0 || h.Port > 65535 {
			bad("http port %d is out of range", h.Port)
		}
	}
	if p.TCP != nil {
		n++
		if p.TCP.Port < 0 || p.TCP.Port > 65535 {
			bad("tcp port %d is out of range", p.TCP.Port)
		}
	}
	if p.Exec != nil {
		n++
		if len(p.Exec.Command) == 0 || p.Exec.Command[0] == "" {
			bad("exec command is empty")
		}
	}
	if n != 1 {
		bad("exactly one of http, tcp and exec must be set, found %d", n)
	}

	if p.InitialDelay < 0 || p.Period < 0 || p.Timeout < 0 {
		bad("durations must not be negative")
	}
	if p.Period == 0 {
		p.Period = DefaultProbePeriod
	}
	if p.Timeout == 0 {
		p.Timeout = DefaultProbeTimeout
	}
	if p.FailureThreshold < 0 || p.SuccessThreshold < 0 {
		bad("thresholds must not be negative")
	}
	if p.FailureThreshold == 0 {
		p.FailureThreshold = DefaultFailureThreshold
	}
	if p.SuccessThreshold == 0 {
		p.SuccessThreshold = DefaultSuccessThreshold
	}
	if kind != ProbeReadiness && p.SuccessThreshold != 1 {
		bad("success threshold must be 1 for a %s probe, as in Kubernetes", kind)
	}
	return p, errors.Join(errs...)
}

// clone returns a deep copy of cfg, so that a caller cannot change what the
// replicas' goroutines read.
func (cfg ServiceConfig) clone() ServiceConfig {
	cfg.Env = append([]string(nil), cfg.Env...)
	if cfg.Credential != nil {
		c := *cfg.Credential
		c.Groups = append([]uint32(nil), c.Groups...)
		cfg.Credential = &c
	}
	for _, p := range []**Probe{&cfg.Startup, &cfg.Liveness, &cfg.Readiness} {
		if *p == nil {
			continue
		}
		c := **p
		if c.HTTP != nil {
			h := *c.HTTP
			c.HTTP = &h
		}
		if c.TCP != nil {
			t := *c.TCP
			c.TCP = &t
		}
		if c.Exec != nil {
			c.Exec = &ExecProbe{Command: append([]string(nil), c.Exec.Command...)}
		}
		*p = &c
	}
	return cfg
}
