package spec

import (
	"testing"
)

// TestSchemaAndValidateRefuseTogether holds nubo schema and nubo validate
// to one verdict on each check the JSON Schema can express: each spec is
// accepted by both or refused by both. The specs are mutations of small
// valid ones at the edges of each check (runDiagCases, diagStrings and
// exprDiags check the other direction on every validator case: the schema
// never refuses what validate accepts).
func TestSchemaAndValidateRefuseTogether(t *testing.T) {
	schema := compiledSchema(t)
	svc := "name: t\nservices:\n  api:\n    run: x\n"
	fn := "name: t\nfunctions:\n  f:\n    run: x\n"
	tests := []struct {
		name  string
		src   string
		valid bool
	}{
		// Durations: strings, or a bare 0.
		{"duration string", "name: t\nqueues:\n  q: {visibility: 30s}\n", true},
		{"duration 0", "name: t\nqueues:\n  q: {visibility: 0}\n", true},
		{"duration integer", "name: t\nqueues:\n  q: {visibility: 30}\n", false},
		{"duration negative", "name: t\nqueues:\n  q: {visibility: -1s}\n", false},
		{"duration fraction", "name: t\nqueues:\n  q: {visibility: 1.5}\n", false},
		{"duration days", "name: t\nobservability:\n  metrics: {retention: 30d}\n", true},
		// Quantities: strings or non-negative numbers.
		{"quantity number", svc + "    resources: {cpu: 2, memory: 512Mi}\n", true},
		{"quantity fraction", svc + "    resources: {cpu: 0.5}\n", true},
		{"quantity negative number", svc + "    resources: {cpu: -1}\n", false},
		{"quantity negative string", svc + "    resources: {memory: -1Gi}\n", false},
		// Strings take any scalar, as the decoder does.
		{"numeric image", "name: t\nservices:\n  api: {image: 123}\n", true},
		{"integer env value", svc + "    env: {PORT_ALT: 8080, DEBUG: true, RATIO: 0.5}\n", true},
		{"numeric database version", "name: t\ndatabases:\n  db: {type: postgres, version: 16}\n", true},
		{"numeric config value", "name: t\nconfig:\n  c: {A: 1}\n", true},
		{"enum given a number", "name: t\nqueues:\n  q: {type: 1}\n", false},
		// A null is an absent value.
		{"null image", "name: t\nservices:\n  api: {run: x, image: ~}\n", true},
		{"empty health", svc + "    health:\n", true},
		{"empty queue", "name: t\nqueues:\n  q:\n", true},
		{"null config value", "name: t\nconfig:\n  c: {A: ~}\n", true},
		{"null replicas", svc + "    replicas: ~\n", true},
		{"null enum", "name: t\nqueues:\n  q: {type: ~}\n", true},
		{"null duration", "name: t\nqueues:\n  q: {visibility: ~}\n", true},
		// Names.
		{"numeric app name", "name: 123\n", true},
		{"app name not a label", "name: Shop_App\n", false},
		{"negative app name", "name: -1\n", false},
		{"namespace too long", "name: t\nnamespace: " + longLabel + "x\n", false},
		{"service name with a digit first", "name: t\nservices:\n  1api: {run: x}\n", false},
		{"queue name of 64 characters", "name: t\nqueues:\n  " + longLabel + "x: {}\n", false},
		{"queue name of 63 characters", "name: t\nqueues:\n  " + longLabel + ": {}\n", true},
		{"role name ending in _", "name: t\ndatabases:\n  db: {type: postgres, security: {access: {roles: [{name: rw_}]}}}\n", false},
		{"role name with capitals", "name: t\ndatabases:\n  db: {type: postgres, security: {access: {roles: [{name: Users_RW}]}}}\n", true},
		{"numeric role name", "name: t\ndatabases:\n  db: {type: postgres, security: {access: {roles: [{name: 12}]}}}\n", false},
		// Ports.
		{"port 65535", svc + "    port: 65535\n", true},
		{"port 65536", svc + "    port: 65536\n", false},
		{"port negative", svc + "    port: -1\n", false},
		{"expose port out of range", svc + "    expose: {port: 70000}\n", false},
		{"probe port out of range", svc + "    health: {liveness: {tcp: {port: 99999}}}\n", false},
		{"ingress port out of range", svc + "ingress:\n  - {name: i, paths: [{path: /, to: service:api, port: 65536}]}\n", false},
		{"scrape port out of range", svc + "observability:\n  metrics: {scrape: [{service: api, port: 0}, {service: api, port: 65536}]}\n", false},
		{"network port 0", svc + "databases:\n  db: {type: redis, security: {network: {ingress: [{from: [{service: api}], ports: [{port: 0}]}]}}}\n", false},
		{"network port 6379", svc + "databases:\n  db: {type: redis, security: {network: {ingress: [{from: [{service: api}], ports: [{port: 6379}]}]}}}\n", true},
		{"smtp port out of range", "name: t\nobservability:\n  channels:\n    m: {type: email, to: [a@example.com], smtp: {host: h, port: 70000}}\n", false},
		// Counts.
		{"replicas 0", svc + "    replicas: 0\n", true},
		{"replicas negative", svc + "    replicas: -1\n", false},
		{"database replicas negative", "name: t\ndatabases:\n  db: {type: postgres, replicas: -2}\n", false},
		{"scaling max 0", svc + "    resources: {cpu: 1}\n    scaling: {min: 0, max: 0, targetCPU: 50}\n", false},
		{"scaling max 1", svc + "    resources: {cpu: 1}\n    scaling: {min: 0, max: 1, targetCPU: 50}\n", true},
		{"scaling min negative", svc + "    resources: {cpu: 1}\n    scaling: {min: -1, max: 2, targetCPU: 50}\n", false},
		{"failureThreshold 0 is the default", svc + "    health: {liveness: {tcp: {}, failureThreshold: 0}}\n", true},
		{"failureThreshold negative", svc + "    health: {liveness: {tcp: {}, failureThreshold: -1}}\n", false},
		{"retry attempts negative", svc + "    traffic: {retry: {attempts: -1}}\n", false},
		{"function concurrency negative", fn + "    concurrency: -1\n", false},
		{"function concurrency 0 is the default", fn + "    concurrency: 0\n", true},
		{"trigger batch negative", fn + "    triggers: [{schedule: '@every 1m', batchSize: -1}]\n", false},
		{"maxReceive negative", "name: t\nqueues:\n  q: {deadLetter: {queue: d, maxReceive: -1}}\n  d: {}\n", false},
		{"backup retention negative", "name: t\ndatabases:\n  db: {type: postgres, backup: {retention: -1}}\n", false},
		{"projection checkpoint negative", fn + "eventStore:\n  projections:\n    p: {query: {streams: 'a-*'}, handler: function:f, checkpoint: -5}\n", false},
		{"escalation maxRepeat negative", "name: t\nobservability:\n  channels: {c: {type: log}}\n  escalation:\n    e: {steps: [{delay: 0s, channels: [c]}], maxRepeat: -1}\n", false},
		// Percents, rates and statuses.
		{"fault percent 100", svc + "    traffic: {fault: {delay: {percent: 100, fixed: 1s}}}\n", true},
		{"fault percent 101", svc + "    traffic: {fault: {delay: {percent: 101, fixed: 1s}}}\n", false},
		{"abort status 199", svc + "    traffic: {fault: {abort: {percent: 1, status: 199}}}\n", false},
		{"abort status 503", svc + "    traffic: {fault: {abort: {percent: 1, status: 503}}}\n", true},
		{"maxEjectionPercent 150", svc + "    traffic: {circuitBreaker: {maxEjectionPercent: 150}}\n", false},
		{"route weight negative", svc + "  v2: {run: x}\nmesh:\n  routes:\n    api: [{destination: api, weight: 110}, {destination: v2, weight: -10}]\n", false},
		{"sampleRate 1", "name: t\nobservability:\n  tracing: {sampleRate: 1}\n", true},
		{"sampleRate 1.5", "name: t\nobservability:\n  tracing: {sampleRate: 1.5}\n", false},
		{"throttle rate 0", "name: t\ngateway:\n  stages: {prod: {throttle: {rate: 0}}}\n", false},
		{"throttle burst negative", "name: t\ngateway:\n  stages: {prod: {throttle: {rate: 1, burst: -1}}}\n", false},
		{"status code 600", "name: t\ngateway:\n  routes:\n    - {path: /x, methods: [GET], integration: {type: mock}, response: {statusCodes: [{pattern: x, status: 600}]}}\n", false},
		{"route path without /", "name: t\ngateway:\n  routes:\n    - {path: x, methods: [GET], integration: {type: mock}}\n", false},
		{"route path with /", "name: t\ngateway:\n  routes:\n    - {path: /x, methods: [GET], integration: {type: mock}}\n", true},
		// SLOs.
		{"objective 99.9", "name: t\nobservability:\n  slos:\n    s: {objective: 99.9, indicators: [{name: a, type: ratio, errors: up, total: up}]}\n", true},
		{"objective 100", "name: t\nobservability:\n  slos:\n    s: {objective: 100, indicators: [{name: a, type: ratio, errors: up, total: up}]}\n", false},
		{"objective 0", "name: t\nobservability:\n  slos:\n    s: {objective: 0, indicators: [{name: a, type: ratio, errors: up, total: up}]}\n", false},
		{"indicator weight 0", "name: t\nobservability:\n  slos:\n    s: {objective: 99, indicators: [{name: a, type: ratio, errors: up, total: up, weight: 0}]}\n", false},
		// Channels.
		{"webhook without url", "name: t\nobservability:\n  channels:\n    w: {type: webhook}\n", false},
		{"slack without url", "name: t\nobservability:\n  channels:\n    s: {type: slack}\n", false},
		{"webhook with url", "name: t\nobservability:\n  channels:\n    w: {type: webhook, url: http://127.0.0.1:9099/alerts}\n", true},
		{"email without smtp", "name: t\nobservability:\n  channels:\n    m: {type: email, to: [a@example.com]}\n", false},
		{"log channel", "name: t\nobservability:\n  channels:\n    l: {type: log}\n", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			diags := diagnose(t, tc.src)
			doc, ok := yamlAsJSON([]byte(tc.src))
			if !ok {
				t.Fatalf("not plain YAML:\n%s", tc.src)
			}
			schemaErr := schema.Validate(doc)
			validateOK, schemaOK := !hasError(diags), schemaErr == nil
			if validateOK != tc.valid {
				t.Errorf("nubo validate: accepted = %v, want %v: %v", validateOK, tc.valid, diags)
			}
			if schemaOK != tc.valid {
				t.Errorf("nubo schema: accepted = %v, want %v: %v", schemaOK, tc.valid, schemaErr)
			}
		})
	}
}

// longLabel is a DNS label of the greatest length, 63.
const longLabel = "abcdefghij-abcdefghij-abcdefghij-abcdefghij-abcdefghij-abcdefgh"
