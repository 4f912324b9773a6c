package spec

import "testing"

func TestServiceSemantics(t *testing.T) {
	runDiagCases(t, []diagCase{
		{"ports", `name: t
services:
  a:
    run: x
    port: 70000
    expose: {port: -1}
    health:
      liveness: {http: {port: 65536}}
      readiness: {tcp: {port: 0}}
ingress:
  - name: i
    paths: [{path: /, to: service:a, port: 99999}]
observability:
  metrics:
    scrape: [{service: a, port: 100000}]
  channels:
    mail: {type: email, to: [x@y.z], smtp: {host: h, port: 70000}}
databases:
  db:
    type: postgres
    security:
      network:
        ingress: [{from: [{service: a}], ports: [{port: 0}]}]
`, []string{
			`t.yaml:5:11: services.a.port: port 70000 is out of range 1..65535`,
			`t.yaml:6:20: services.a.expose.port: port -1 is out of range 1..65535`,
			`t.yaml:8:31: services.a.health.liveness.http.port: port 65536 is out of range 1..65535`,
			`t.yaml:12:44: ingress[0].paths[0].port: port 99999 is out of range 1..65535`,
			`t.yaml:15:33: observability.metrics.scrape[0].port: port 100000 is out of range 1..65535`,
			`t.yaml:17:60: observability.channels.mail.smtp.port: port 70000 is out of range 1..65535`,
			`t.yaml:23:57: databases.db.security.network.ingress[0].ports[0].port: port 0 is out of range 1..65535`,
		}},
		{"replicas", `name: t
services:
  a: {run: x, replicas: -1}
databases:
  db: {type: redis, replicas: -2}
`, []string{
			`t.yaml:3:25: services.a.replicas: replicas must be at least 0, not -1`,
			`t.yaml:5:31: databases.db.replicas: replicas must be at least 0, not -2`,
		}},
		{"scaling", `name: t
services:
  a:
    run: x
    scaling: {min: 5, max: 3, targetCPU: 50}
  b:
    run: x
    resources: {cpu: 500m}
    scaling: {max: 0, targetCPU: 50, targetMemory: 80}
  c:
    run: x
    scaling: {max: 3}
  d:
    run: x
    resources: {memory: 1Gi}
    scaling: {min: -1, max: 3, targetMemory: -5}
`, []string{
			`t.yaml:5:20: services.a.scaling.min: min 5 is more than max 3`,
			`t.yaml:5:42: services.a.scaling.targetCPU: targetCPU is a percent of resources.cpu, which is not set`,
			`t.yaml:9:20: services.b.scaling.max: max must be at least 1, not 0`,
			`t.yaml:9:52: services.b.scaling.targetMemory: targetMemory is a percent of resources.memory, which is not set`,
			`t.yaml:12:5: services.c.scaling: scaling needs a target: set targetCPU or targetMemory`,
			`t.yaml:16:20: services.d.scaling.min: min must be at least 0, not -1`,
			`t.yaml:16:46: services.d.scaling.targetMemory: targetMemory must be at least 0, not -5`,
		}},
		{"probes", `name: t
services:
  a:
    run: x
    health:
      liveness: {http: {}, tcp: {}}
      readiness: {period: 5s}
      startup: {exec: {command: [x]}, failureThreshold: -1, successThreshold: -2}
`, []string{
			`t.yaml:6:7: services.a.health.liveness: a probe sets http and tcp: set only one`,
			`t.yaml:7:7: services.a.health.readiness: a probe needs one of http, tcp or exec`,
			`t.yaml:8:57: services.a.health.startup.failureThreshold: failureThreshold must be at least 1, not -1`,
			`t.yaml:8:79: services.a.health.startup.successThreshold: successThreshold must be at least 1, not -2`,
		}},
		{"sticky sessions", `name: t
services:
  a:
    run: x
    traffic:
      loadBalancing:
        sticky: {header: h, cookie: {name: c}}
  b:
    run: x
    traffic:
      loadBalancing: {algorithm: random, sticky: {header: h}}
  c:
    run: x
    traffic:
      loadBalancing: {sticky: {}}
  d:
    run: x
    traffic:
      loadBalancing: {algorithm: ring_hash, sticky: {cookie: {name: sid, ttl: 1h}}}
`, []string{
			`t.yaml:7:9: services.a.traffic.loadBalancing.sticky: sticky sets header and cookie: set only one`,
			`t.yaml:15:23: services.c.traffic.loadBalancing.sticky: sticky needs one of header or cookie`,
			`t.yaml:11:34: services.b.traffic.loadBalancing.algorithm: warning: sticky sessions use ring_hash; random is ignored while sticky is set`,
		}},
		{"retry, circuit breaker and faults", `name: t
services:
  a:
    run: x
    traffic:
      retry: {attempts: -1}
      circuitBreaker: {consecutiveErrors: -1, maxEjectionPercent: 120}
      fault:
        delay: {percent: 101, fixed: 1s}
        abort: {percent: -1, status: 600}
`, []string{
			`t.yaml:6:25: services.a.traffic.retry.attempts: attempts must be at least 0, not -1`,
			`t.yaml:7:43: services.a.traffic.circuitBreaker.consecutiveErrors: consecutiveErrors must be at least 1, not -1`,
			`t.yaml:7:67: services.a.traffic.circuitBreaker.maxEjectionPercent: percent 120 is not within 0..100`,
			`t.yaml:9:26: services.a.traffic.fault.delay.percent: percent 101 is not within 0..100`,
			`t.yaml:10:26: services.a.traffic.fault.abort.percent: percent -1 is not within 0..100`,
			`t.yaml:10:38: services.a.traffic.fault.abort.status: status 600 is not within 200..599`,
		}},
		{"run or image", `name: t
services:
  k8s: {image: x}
  none: {port: 80}
functions:
  fk: {image: x}
  fn: {timeout: 1s}
`, []string{
			`t.yaml:4:3: services.none: needs run (what nubo up starts) or image (what Kubernetes runs)`,
			`t.yaml:7:3: functions.fn: needs run (what nubo up starts) or image (what Kubernetes runs)`,
			`t.yaml:3:3: services.k8s: warning: no run: nubo up cannot start it; it is rendered for Kubernetes only`,
			`t.yaml:6:3: functions.fk: warning: no run: nubo up cannot start it; it is rendered for Kubernetes only`,
		}},
		{"secrets written inline", `name: t
secrets:
  gh: {keys: [TOKEN]}
services:
  a:
    run: x
    env:
      DB_PASSWORD: hunter2
      api_key: abc
      GITHUB_TOKEN: "${secrets.gh.TOKEN}"
      CLIENT_SECRET: ""
      LOG_LEVEL: debug
functions:
  f:
    run: x
    env: {Private_Key: "-----BEGIN"}
`, []string{
			`t.yaml:8:20: services.a.env.DB_PASSWORD: warning: ` + inlineSecretMessage,
			`t.yaml:9:16: services.a.env.api_key: warning: ` + inlineSecretMessage,
			`t.yaml:16:24: functions.f.env.Private_Key: warning: ` + inlineSecretMessage,
		}},
	})
}

func TestMeshSemantics(t *testing.T) {
	runDiagCases(t, []diagCase{
		{"route weights", `name: t
services:
  a: {run: x}
  b: {run: x}
mesh:
  routes:
    a:
      - {destination: a, weight: 90}
      - {destination: b, weight: -5}
    b:
      - {destination: b, weight: 100}
`, []string{
			`t.yaml:7:5: mesh.routes.a: the weights of route "a" sum to 85, not 100`,
			`t.yaml:9:34: mesh.routes.a[1].weight: weight must be at least 0, not -5`,
		}},
	})
}

func TestDatabaseSemantics(t *testing.T) {
	runDiagCases(t, []diagCase{
		{"backups and peers", `name: t
services:
  a: {run: x}
functions:
  f: {run: x}
databases:
  db:
    type: postgres
    backup: {enabled: true, retention: -1}
    security:
      network:
        ingress:
          - from: [{service: a, function: f}, {}]
            ports: [{port: 5432}]
`, []string{
			`t.yaml:9:5: databases.db.backup: enabled backups need a schedule`,
			`t.yaml:9:40: databases.db.backup.retention: retention must be at least 1, not -1`,
			`t.yaml:13:21: databases.db.security.network.ingress[0].from[0]: a peer sets service and function: set only one`,
			`t.yaml:13:47: databases.db.security.network.ingress[0].from[1]: a peer needs one of service or function`,
		}},
	})
}

func TestFunctionSemantics(t *testing.T) {
	runDiagCases(t, []diagCase{
		{"scaling, concurrency, retry and triggers", `name: t
queues:
  q: {}
topics:
  tp: {}
functions:
  f:
    run: x
    concurrency: -1
    scaling: {min: 5, max: 2}
    retry: {attempts: -1}
    triggers:
      - {queue: q, topic: tp}
      - {enabled: false}
      - {queue: q, batchSize: -1}
  g:
    run: x
    scaling: {min: -1, max: -1}
`, []string{
			`t.yaml:9:18: functions.f.concurrency: concurrency must be at least 1, not -1`,
			`t.yaml:10:20: functions.f.scaling.min: min 5 is more than max 2`,
			`t.yaml:11:23: functions.f.retry.attempts: attempts must be at least 0, not -1`,
			`t.yaml:13:10: functions.f.triggers[0]: a trigger sets queue and topic: set only one`,
			`t.yaml:14:10: functions.f.triggers[1]: a trigger needs one of queue, topic, schedule, http or event`,
			`t.yaml:15:31: functions.f.triggers[2].batchSize: batchSize must be at least 1, not -1`,
			`t.yaml:18:20: functions.g.scaling.min: min must be at least 0, not -1`,
			`t.yaml:18:29: functions.g.scaling.max: max must be at least 1, not -1`,
		}},
	})
}

func TestEventSemantics(t *testing.T) {
	runDiagCases(t, []diagCase{
		{"batches, checkpoints and snapshots", `name: t
functions:
  f: {run: x}
queues:
  q: {deadLetter: {queue: dl, maxReceive: -1}}
  dl: {}
topics:
  tp:
    subscriptions: [{endpoint: function:f, batchSize: -1}]
eventStore:
  projections:
    p: {handler: function:f, batchSize: -1, checkpoint: -1}
  snapshots:
    s: {streams: "a-*", handler: function:f}
`, []string{
			`t.yaml:5:43: queues.q.deadLetter.maxReceive: maxReceive must be at least 1, not -1`,
			`t.yaml:9:55: topics.tp.subscriptions[0].batchSize: batchSize must be at least 1, not -1`,
			`t.yaml:12:41: eventStore.projections.p.batchSize: batchSize must be at least 1, not -1`,
			`t.yaml:12:57: eventStore.projections.p.checkpoint: checkpoint must be at least 1, not -1`,
			`t.yaml:14:5: eventStore.snapshots.s: a snapshot needs every or frequency`,
		}},
	})
}
