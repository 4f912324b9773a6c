package parity

// registry is the table of features, in the order of the reference file. It
// is built on each call so that no caller can change another's rows.
//
// Until the engine runs a feature, its row is NotYet and its note says what
// `nubo up` is planned to do; the issue that makes it work flips the row.
func registry() []Row {
	return []Row{
		// The application.
		row("name", "application name", Local, "names the run, its state and its labels"),
		row("namespace", "namespace", Local, "source.namespace in mesh policies and the Istio metrics' namespace labels"),
		row("include", "included files", Local, "merged into the spec when it is loaded"),

		// Configuration and secrets.
		row("config", "ConfigMaps", Local, "keys injected through envFrom and ${config...}"),
		row("secrets.*.type", "secret type", K8sOnly, "the Kubernetes Secret type; locally a secret is a set of keys"),
		row("secrets.*.keys", "secret keys", Local, "checked before anything starts; values injected, never printed"),
		row("secrets.*.from.env", "secret values from the environment", Local, "read from the environment of nubo up"),
		row("secrets.*.from.file", "secret values from a dotenv file", Local, "read from the file, then from the age-encrypted store (nubo secret set)"),

		// Services.
		row("services.*.image", "service image", K8sOnly, "Kubernetes runs the image; nubo up runs `run`"),
		row("services.*.run", "service processes", Local, "supervised processes through sh -c, each replica with its own $PORT"),
		row("services.*.build", "service build", Local, "run before the first start; a failure stops nubo up"),
		row("services.*.dir", "service working directory", Local, "the processes' working directory"),
		row("services.*.port", "container port", K8sOnly, "the containerPort; locally each replica listens on its own $PORT"),
		row("services.*.replicas", "service replicas", Local, "that many processes, each on its own $PORT (balanced by the mesh once it exists)"),
		row("services.*.resources", "resource requests", Emulated, "emulated: the base of autoscaling percentages; not enforced as limits locally"),
		row("services.*.env", "service environment", Local, "set on every replica, ${...} interpolated (parts not run yet resolve empty, with a warning)"),
		row("services.*.envFrom.config", "environment from ConfigMaps", Local, "every key of the ConfigMaps becomes a variable"),
		row("services.*.envFrom.secrets", "environment from secrets", Local, "every key of the secrets becomes a variable"),
		row("services.*.dependsOn", "start order", Local, "services started and ready first, stopped after (databases and functions: not waited for yet)"),
		row("services.*.restart", "restart policy", Local, "CrashLoopBackOff as the kubelet: 10s doubling to 5m (local.supervisor)"),
		row("services.*.watch", "hot reload", Local, "local only: rebuild and roll the replicas on a change"),
		row("services.*.stopGracePeriod", "graceful stop", Local, "SIGTERM to the process group, then SIGKILL after the period"),
		row("services.*.health.liveness", "liveness probe", Local, "a failing replica is restarted"),
		row("services.*.health.readiness", "readiness probe", Local, "gates dependents and the replica's Ready state"),
		row("services.*.health.startup", "startup probe", Local, "liveness and readiness wait until it has passed once"),
		row("services.*.scaling", "autoscaling", Local, "the HPA algorithm on CPU and RSS from /proc"),
		row("services.*.expose.type", "Service type", K8sOnly, "ClusterIP, NodePort or LoadBalancer; locally callers go through the mesh"),
		row("services.*.expose.port", "Service port", Local, "the port callers use through the mesh (http://users:80)"),
		row("services.*.traffic.loadBalancing.algorithm", "load balancing", Local, "in the mesh proxy, over ready replicas"),
		row("services.*.traffic.loadBalancing.sticky", "sticky sessions", Local, "ring hash on the header or cookie in the mesh proxy"),
		row("services.*.traffic.circuitBreaker", "circuit breaker", Local, "Envoy's outlier detection per replica in the mesh proxy"),
		row("services.*.traffic.retry", "retries", Local, "retries with jittered backoff in the mesh proxy"),
		row("services.*.traffic.timeout", "request timeout", Local, "enforced by the mesh proxy, retries included"),
		row("services.*.traffic.fault.delay", "fault injection: delays", Local, "delays injected by the mesh proxy"),
		row("services.*.traffic.fault.abort", "fault injection: aborts", Local, "aborts injected by the mesh proxy"),
		row("services.*.grpc", "gRPC and h2c", Local, "HTTP/2 cleartext through the mesh proxy"),

		// Service mesh.
		row("mesh.mtls", "mutual TLS", Emulated, "emulated: identity from the proxy listener, no TLS needed inside one process"),
		row("mesh.routes", "weighted routes", Local, "weighted routing in the mesh proxy (canaries)"),
		row("mesh.policies", "authorization policies", Local, "audit, deny and allow in the proxy by caller identity"),
		row("mesh.policies[*].when", "policy conditions", Local, "method, path, header and namespace conditions in the proxy"),
		row("mesh.enforcement", "policy enforcement mode", Local, "audit mode logs denials instead of applying them"),

		// Ingress.
		row("ingress", "ingress routing", Local, "a host and path router on local.ingress (to: gateway answers 502 until the gateway exists)"),
		row("ingress[*].tls", "ingress TLS", Local, "certificates from nubo's local CA (nubo ca)"),

		// Databases.
		row("databases.*.type=postgres", "PostgreSQL", NotYet, "planned: a postgres process from the system's packages"),
		row("databases.*.type=redis", "Redis", NotYet, "planned: a redis-server process from the system's packages"),
		row("databases.*.version", "database version", NotYet, "planned: checked against the installed server"),
		row("databases.*.replicas", "database replicas", NotYet, "planned: streaming replicas as more processes"),
		row("databases.*.storage.size", "volume size", K8sOnly, "the volume's size; locally data lives in local.stateDir"),
		row("databases.*.storage.class", "storage class", K8sOnly, "the Kubernetes storage class"),
		row("databases.*.storage.accessMode", "volume access mode", K8sOnly, "the PersistentVolumeClaim's access mode"),
		row("databases.*.storage.persistent", "persistent data", NotYet, "planned: data kept in local.stateDir across runs"),
		row("databases.*.backup", "database backups", NotYet, "planned: scheduled dumps into the destination folder, with retention"),
		row("databases.*.monitoring", "database monitoring", NotYet, "planned: the database's metrics scraped and its alert rules evaluated"),
		row("databases.*.security.encryption", "database encryption", NotYet, "planned: encrypted backups and TLS from the local CA"),
		row("databases.*.security.access", "database roles", NotYet, "planned: roles and grants created, per-service connection URLs"),
		row("databases.*.security.network", "database network policy", NotYet, "planned: connections refused except from the listed workloads"),

		// Functions.
		row("functions.*.runtime", "function runtime", K8sOnly, "picks the base image; informational locally"),
		row("functions.*.handler", "function handler", Local, "informational: the process serves HTTP on $PORT itself"),
		row("functions.*.image", "function image", K8sOnly, "Kubernetes runs the image; nubo up runs `run`"),
		row("functions.*.run", "function processes", NotYet, "planned: instances serving HTTP on $PORT, CloudEvents in binary mode"),
		row("functions.*.build", "function build", NotYet, "planned: run once at start-up"),
		row("functions.*.dir", "function working directory", NotYet, "planned: the instances' working directory"),
		row("functions.*.memory", "function memory limit", NotYet, "planned: a cgroup v2 limit where available, otherwise reported"),
		row("functions.*.timeout", "invocation timeout", NotYet, "planned: an invocation is cancelled after the timeout"),
		row("functions.*.concurrency", "invocation concurrency", NotYet, "planned: invocations at once per instance"),
		row("functions.*.scaling", "function instance pool", NotYet, "planned: scale from and to zero between min and max"),
		row("functions.*.env", "function environment", NotYet, "planned: set on every instance, ${...} interpolated"),
		row("functions.*.layers", "function layers", NotYet, "planned: folders put on PATH and listed in NUBO_LAYERS"),
		row("functions.*.vpc", "function egress (VPC)", NotYet, "planned: an egress allow-list in the mesh proxy"),
		row("functions.*.triggers[*].queue", "queue trigger", NotYet, "planned: the dispatcher consumes the queue"),
		row("functions.*.triggers[*].topic", "topic trigger", NotYet, "planned: a durable subscription to the topic"),
		row("functions.*.triggers[*].schedule", "schedule trigger", NotYet, "planned: cron in the dispatcher"),
		row("functions.*.triggers[*].http", "HTTP trigger", NotYet, "planned: a route on the engine and the gateway"),
		row("functions.*.triggers[*].event", "event trigger", NotYet, "planned: events on the bus matched by source and type"),
		row("functions.*.triggers[*].batchSize", "batched invocations", NotYet, "planned: a JSON array of CloudEvents per invocation"),
		row("functions.*.triggers[*].filter", "trigger filters", NotYet, "planned: CloudEvents filter dialects and jq"),
		row("functions.*.triggers[*].enabled", "trigger switch", NotYet, "planned: a disabled trigger invokes nothing"),
		row("functions.*.retry", "invocation retries", NotYet, "planned: retries with doubling backoff"),
		row("functions.*.deadLetter", "function dead letters", NotYet, "planned: events that failed every attempt go to the queue"),

		// Events.
		row("events", "event types", NotYet, "planned: CloudEvents 1.0 on the embedded bus"),
		row("events.*.schema", "event schemas", NotYet, "planned: a publish breaking the JSON Schema is refused"),
		row("rules", "event rules", NotYet, "planned: the dispatcher delivers matching events to the target"),
		row("rules.*.filter", "rule filters", NotYet, "planned: CloudEvents filter dialects and jq"),
		row("rules.*.transform", "rule transforms", NotYet, "planned: a jq program whose result becomes data"),
		row("queues", "queues", NotYet, "planned: JetStream work queues with visibility timeouts"),
		row("queues.*.type", "queue ordering (fifo)", NotYet, "planned: fifo delivers in order per subject"),
		row("queues.*.deadLetter", "queue dead letters", NotYet, "planned: events past maxReceive move to the dead-letter queue"),
		row("topics", "topics", NotYet, "planned: fan-out with a durable consumer per subscription"),
		row("topics.*.subscriptions[*].filter", "subscription filters", NotYet, "planned: CloudEvents filter dialects and jq"),
		row("schedules", "schedules", NotYet, "planned: cron in the dispatcher"),

		// API gateway.
		row("gateway", "API gateway", NotYet, "planned: the gateway component on local.gateway"),
		row("gateway.stages", "gateway stages", NotYet, "planned: path prefixes with stage variables"),
		row("gateway.stages.*.cache", "stage cache", NotYet, "planned: an LRU cache of GET and HEAD answers"),
		row("gateway.stages.*.throttle", "stage throttling", NotYet, "planned: a token bucket per stage"),
		row("gateway.authorizers.*.type=jwt", "JWT authorizer", NotYet, "planned: JWTs checked against the issuer's key set"),
		row("gateway.authorizers.*.type=apiKey", "API-key authorizer", NotYet, "planned: keys checked against the secret"),
		row("gateway.authorizers.*.type=function", "function authorizer", NotYet, "planned: the function decides, answers cached"),
		row("gateway.models", "gateway models", NotYet, "planned: JSON Schemas that request bodies are validated against"),
		row("gateway.routes[*].cors", "CORS", NotYet, "planned: preflights answered and CORS headers added"),
		row("gateway.routes[*].integration.type=service", "service integration", NotYet, "planned: requests forwarded through the mesh"),
		row("gateway.routes[*].integration.type=function", "function integration", NotYet, "planned: requests turned into function invocations"),
		row("gateway.routes[*].integration.type=http", "HTTP integration", NotYet, "planned: requests forwarded to the URL"),
		row("gateway.routes[*].integration.type=mock", "mock integration", NotYet, "planned: the fixed answer, without a backend"),
		row("gateway.routes[*].cache", "route cache", NotYet, "planned: answers cached by the listed keys"),
		row("gateway.routes[*].throttle", "route throttling", NotYet, "planned: a token bucket per route"),
		row("gateway.routes[*].request.model", "request validation", NotYet, "planned: bodies validated against the model, 400 with the reason"),
		row("gateway.routes[*].request.required", "required parameters", NotYet, "planned: requests missing a header or query parameter get 400"),
		row("gateway.routes[*].request.transform", "request transforms", NotYet, "planned: a jq program over the body"),
		row("gateway.routes[*].response.transform", "response transforms", NotYet, "planned: a jq program over the answer"),
		row("gateway.routes[*].response.headers", "response headers", NotYet, "planned: headers added to answers"),
		row("gateway.routes[*].response.statusCodes", "status code mapping", NotYet, "planned: backend errors mapped to statuses by pattern"),

		// Event sourcing.
		row("eventStore", "event store", NotYet, "planned: streams on the embedded JetStream"),
		row("eventStore.encryption", "event encryption", NotYet, "planned: events encrypted at rest with the secret's key"),
		row("eventStore.compression", "event compression", NotYet, "planned: stored events compressed"),
		row("eventStore.projections", "projections", NotYet, "planned: events fed to the handler with checkpoints"),
		row("eventStore.snapshots", "snapshots", NotYet, "planned: aggregates' state stored every N events or some time"),

		// Observability.
		row("observability.metrics", "metrics", NotYet, "planned: a scraper, the Prometheus TSDB and PromQL"),
		row("observability.metrics.scrape", "scrape targets", NotYet, "planned: every replica's endpoint scraped"),
		row("observability.logs", "logs", NotYet, "planned: processes' output captured and kept"),
		row("observability.logs.parsers", "log parsers", NotYet, "planned: lines matched against the patterns"),
		row("observability.logs.filters", "log filters", NotYet, "planned: records dropped, kept or redacted by jq conditions"),
		row("observability.tracing", "tracing", NotYet, "planned: an OTLP receiver, a trace store and W3C propagation"),
		row("observability.tracing.export", "trace export", NotYet, "planned: traces sent on to the OTLP endpoint"),
		row("observability.alerts", "alert rules", NotYet, "planned: PromQL rules evaluated by the engine"),
		row("observability.channels", "notification channels", NotYet, "planned: notifications sent by the engine"),
		row("observability.channels.*.type=webhook", "webhook channel", NotYet, "planned: Alertmanager's webhook format"),
		row("observability.channels.*.type=slack", "Slack channel", NotYet, "planned: Slack incoming webhooks"),
		row("observability.channels.*.type=email", "email channel", NotYet, "planned: mail through the SMTP server"),
		row("observability.channels.*.type=log", "log channel", NotYet, "planned: notifications written to nubo's log"),
		row("observability.escalation", "escalation policies", NotYet, "planned: channels notified in steps until acknowledged"),
		row("observability.dashboards", "dashboards", NotYet, "planned: console pages; Grafana dashboards on Kubernetes"),
		row("observability.slos", "SLOs", NotYet, "planned: recording rules and error budgets"),
		row("observability.slos.*.alerting", "burn-rate alerts", NotYet, "planned: multi-window, multi-burn-rate alerts"),

		// Settings of the local run.
		row("local.stateDir", "local state folder", Local, "where nubo up keeps its data"),
		row("local.console", "console address", Local, "where nubo up serves the console and APIs"),
		row("local.gateway", "local gateway address", Local, "where nubo up serves the API gateway"),
		row("local.ingress", "local ingress addresses", Local, "where nubo up serves the ingress"),
		row("local.otlp", "local OTLP address", Local, "where nubo up receives traces and logs"),
		row("local.broker", "local broker", Local, "the embedded NATS server or an existing one"),
		row("local.supervisor", "supervision tuning", Local, "restart backoff, autoscaling interval and stabilization, sampling"),

		// Settings of Kubernetes.
		row("kubernetes.mesh", "Kubernetes service mesh", K8sOnly, "the mesh the manifests target"),
		row("kubernetes.functions", "Kubernetes functions", K8sOnly, "Knative Services or Deployments"),
		row("kubernetes.ingress", "Kubernetes ingress", K8sOnly, "Ingress objects or Gateway API HTTPRoutes"),
		row("kubernetes.monitoring", "Kubernetes monitoring", K8sOnly, "how metrics and rules are rendered"),
		row("kubernetes.imagePullSecrets", "image pull secrets", K8sOnly, "registry secrets of the pods"),
		row("kubernetes.labels", "Kubernetes labels", K8sOnly, "added to every rendered object"),
	}
}

func row(pattern, feature string, level Level, note string) Row {
	return Row{Pattern: pattern, Feature: feature, Level: level, Note: note}
}
