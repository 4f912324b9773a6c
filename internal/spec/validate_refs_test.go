package spec

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

// diagnose parses src as t.yaml and returns every diagnostic it gets, errors
// first and then warnings, as FILE:LINE:COL: path: message strings.
func diagnose(t *testing.T, src string) []string {
	t.Helper()
	app, err := Parse("t.yaml", []byte(src))
	var ds Diagnostics
	switch {
	case errors.As(err, &ds):
	case err != nil:
		t.Fatalf("Parse failed without diagnostics: %v", err)
	default:
		ds = app.Warnings()
	}
	out := make([]string, len(ds))
	for i, d := range ds {
		out[i] = d.String()
	}
	return out
}

// diagCase is one spec and exactly the diagnostics it must get.
type diagCase struct {
	name string
	src  string
	want []string
}

// runDiagCases checks each case's diagnostics, and that the JSON Schema
// (nubo schema) agrees with them: see schemaAgrees.
func runDiagCases(t *testing.T, cases []diagCase) {
	t.Helper()
	schema := compiledSchema(t)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := diagnose(t, tc.src)
			if !slices.Equal(got, tc.want) {
				t.Errorf("got %d diagnostics:\n%s\nwant %d:\n%s", len(got), strings.Join(got, "\n"), len(tc.want), strings.Join(tc.want, "\n"))
			}
			schemaAgrees(t, schema, tc.src, got)
		})
	}
}

func TestCheckReferences(t *testing.T) {
	runDiagCases(t, []diagCase{
		{"dependsOn", `name: t
services:
  api:
    run: x
    dependsOn: [userz, db, fn]
  users: {run: x}
databases:
  db: {type: redis}
functions:
  fn: {run: x}
`, []string{
			`t.yaml:5:17: services.api.dependsOn[0]: unknown service, database or function "userz" (did you mean "users"?)`,
		}},
		{"envFrom", `name: t
config:
  app: {A: b}
secrets:
  db: {keys: [P]}
services:
  api:
    run: x
    envFrom: {config: [ap, app], secrets: [dbb, db]}
`, []string{
			`t.yaml:9:24: services.api.envFrom.config[0]: unknown config "ap" (did you mean "app"?)`,
			`t.yaml:9:44: services.api.envFrom.secrets[0]: unknown secret "dbb" (did you mean "db"?)`,
		}},
		{"event targets", `name: t
functions:
  send: {run: x}
services:
  web: {run: x}
queues:
  jobs: {}
rules:
  r1: {target: function:sned}
  r2: {target: database:db}
  r3: {target: https://example.com/hook}
  r4: {target: service:wbe/hook}
topics:
  t1:
    subscriptions:
      - endpoint: queue:job
      - endpoint: service:web/x
schedules:
  s1: {expression: "@every 1m", target: topic:t2}
`, []string{
			`t.yaml:9:16: rules.r1.target: unknown function "sned" (did you mean "send"?)`,
			`t.yaml:10:16: rules.r2.target: database:db cannot receive events: write function:, service:, queue:, topic: or an http(s):// URL`,
			`t.yaml:12:16: rules.r4.target: unknown service "wbe" (did you mean "web"?)`,
			`t.yaml:16:19: topics.t1.subscriptions[0].endpoint: unknown queue "job" (did you mean "jobs"?)`,
			`t.yaml:19:41: schedules.s1.target: unknown topic "t2" (did you mean "t1"?)`,
		}},
		{"event store handlers", `name: t
services:
  users: {run: x}
queues:
  q: {}
eventStore:
  projections:
    p1: {handler: queue:q}
    p2: {handler: function:nope}
  snapshots:
    s1: {streams: "u-*", every: 10, handler: service:user/snap}
`, []string{
			`t.yaml:8:19: eventStore.projections.p1.handler: a handler is function:NAME or service:NAME/path, not queue:q`,
			`t.yaml:9:19: eventStore.projections.p2.handler: unknown function "nope" (no function is declared)`,
			`t.yaml:11:46: eventStore.snapshots.s1.handler: unknown service "user" (did you mean "users"?)`,
		}},
		{"queue dead letters", `name: t
queues:
  a: {deadLetter: {queue: a}}
  b: {deadLetter: {queue: dlq}}
  dl: {}
`, []string{
			`t.yaml:3:27: queues.a.deadLetter.queue: queue "a" cannot be its own dead-letter queue`,
			`t.yaml:4:27: queues.b.deadLetter.queue: unknown queue "dlq" (did you mean "dl"?)`,
		}},
		{"function dead letter and triggers", `name: t
queues:
  jobs: {}
topics:
  news: {}
functions:
  f:
    run: x
    deadLetter: job
    triggers:
      - queue: jbs
      - topic: new
`, []string{
			`t.yaml:9:17: functions.f.deadLetter: unknown queue "job" (did you mean "jobs"?)`,
			`t.yaml:11:16: functions.f.triggers[0].queue: unknown queue "jbs" (did you mean "jobs"?)`,
			`t.yaml:12:16: functions.f.triggers[1].topic: unknown topic "new" (did you mean "news"?)`,
		}},
		{"gateway authorizers and models", `name: t
functions:
  auth: {run: x}
gateway:
  authorizers:
    fn: {type: function, function: aut}
    keys: {type: apiKey, keys: {secret: api-keys}}
  models:
    User: {schema: {type: object}}
  routes:
    - path: /a
      authorizer: fnn
      request: {model: Usr}
      integration: {type: mock}
`, []string{
			`t.yaml:6:36: gateway.authorizers.fn.function: unknown function "aut" (did you mean "auth"?)`,
			`t.yaml:7:41: gateway.authorizers.keys.keys.secret: unknown secret "api-keys" (no secret is declared)`,
			`t.yaml:12:19: gateway.routes[0].authorizer: unknown authorizer "fnn" (did you mean "fn"?)`,
			`t.yaml:13:24: gateway.routes[0].request.model: unknown model "Usr" (did you mean "User"?)`,
		}},
		{"integration backends", `name: t
services:
  users: {run: x}
functions:
  fn: {run: x}
gateway:
  routes:
    - path: /a
      integration: {type: service, service: user}
    - path: /b
      integration: {type: function, function: fm}
`, []string{
			`t.yaml:9:45: gateway.routes[0].integration.service: unknown service "user" (did you mean "users"?)`,
			`t.yaml:11:47: gateway.routes[1].integration.function: unknown function "fm" (did you mean "fn"?)`,
		}},
		{"integration service through stage variables", `name: t
services:
  users: {run: x}
gateway:
  stages:
    prod:
      variables: {svc: users}
    dev:
      variables: {svc: userz}
    test:
      variables: {other: users}
  routes:
    - path: /a
      integration: {type: service, service: "${stage.svc}"}
`, []string{
			`t.yaml:14:45: gateway.routes[0].integration.service: ${stage.svc} is "userz" in stage "dev": unknown service (did you mean "users"?)`,
			`t.yaml:14:45: gateway.routes[0].integration.service: stage "test" has no variable "svc", which ${stage.svc} uses`,
		}},
		{"escalation policies and channels", `name: t
databases:
  db:
    type: postgres
    monitoring:
      alerts:
        - {name: a, expr: up == 0, escalation: critcal}
observability:
  alerts:
    - {name: b, expr: up == 0, escalation: critical, channels: [chatt]}
  channels:
    chat: {type: log}
  escalation:
    critical:
      steps:
        - {channels: [chta]}
  slos:
    s:
      objective: 99
      indicators: [{name: a, type: ratio, errors: up, total: up}]
      alerting:
        page: {escalation: crit}
        ticket: {channels: [cht]}
`, []string{
			`t.yaml:7:48: databases.db.monitoring.alerts[0].escalation: unknown escalation policy "critcal" (did you mean "critical"?)`,
			`t.yaml:10:65: observability.alerts[0].channels[0]: unknown channel "chatt" (did you mean "chat"?)`,
			`t.yaml:16:23: observability.escalation.critical.steps[0].channels[0]: unknown channel "chta" (did you mean "chat"?)`,
			`t.yaml:22:28: observability.slos.s.alerting.page.escalation: unknown escalation policy "crit"`,
			`t.yaml:23:29: observability.slos.s.alerting.ticket.channels[0]: unknown channel "cht" (did you mean "chat"?)`,
		}},
		{"mesh destinations, policies and principals", `name: t
services:
  users: {run: x}
functions:
  fn: {run: x}
mesh:
  routes:
    users:
      - {destination: usrs, weight: 100}
  policies:
    - name: p
      to: fm
      action: allow
      from: {principals: ["*", fn, userss]}
    - {name: q, to: "*", action: deny}
`, []string{
			`t.yaml:9:23: mesh.routes.users[0].destination: unknown service "usrs" (did you mean "users"?)`,
			`t.yaml:12:11: mesh.policies[0].to: unknown service or function "fm" (did you mean "fn"?)`,
			`t.yaml:14:36: mesh.policies[0].from.principals[2]: unknown service or function "userss" (did you mean "users"?)`,
		}},
		{"ingress destinations", `name: t
services:
  web: {run: x}
ingress:
  - name: public
    paths:
      - {path: /api, to: gateway}
      - {path: /, to: service:wbe}
      - {path: /x, to: web}
`, []string{
			`t.yaml:7:26: ingress[0].paths[0].to: "gateway" needs a gateway section, and none is declared`,
			`t.yaml:8:23: ingress[0].paths[1].to: unknown service "wbe" (did you mean "web"?)`,
			`t.yaml:9:24: ingress[0].paths[2].to: "web" is not a destination: write "gateway" or service:NAME`,
		}},
		{"encryption keys", `name: t
secrets:
  key: {keys: [k]}
databases:
  db:
    type: postgres
    security:
      encryption: {key: {secret: kye}}
eventStore:
  encryption: {enabled: true, key: {secret: ky}}
`, []string{
			`t.yaml:8:34: databases.db.security.encryption.key.secret: unknown secret "kye" (did you mean "key"?)`,
			`t.yaml:10:45: eventStore.encryption.key.secret: unknown secret "ky" (did you mean "key"?)`,
		}},
		{"database roles and network peers", `name: t
services:
  web: {run: x}
functions:
  fn: {run: x}
databases:
  db:
    type: postgres
    security:
      access:
        roles: [{name: rw, services: [wbe]}]
      network:
        ingress:
          - from: [{service: webb}, {function: fnn}]
            ports: [{port: 5432}]
`, []string{
			`t.yaml:11:39: databases.db.security.access.roles[0].services[0]: unknown service "wbe" (did you mean "web"?)`,
			`t.yaml:14:30: databases.db.security.network.ingress[0].from[0].service: unknown service "webb" (did you mean "web"?)`,
			`t.yaml:14:48: databases.db.security.network.ingress[0].from[1].function: unknown function "fnn" (did you mean "fn"?)`,
		}},
		{"observability services", `name: t
services:
  users: {run: x}
observability:
  metrics:
    scrape: [{service: user}]
  logs:
    parsers: [{name: p, services: [userss], pattern: '(?P<a>a)'}]
  slos:
    s:
      objective: 99
      indicators: [{name: l, type: latency, service: uses, threshold: 300ms}]
`, []string{
			`t.yaml:6:24: observability.metrics.scrape[0].service: unknown service "user" (did you mean "users"?)`,
			`t.yaml:8:36: observability.logs.parsers[0].services[0]: unknown service "userss" (did you mean "users"?)`,
			`t.yaml:12:54: observability.slos.s.indicators[0].service: unknown service "uses" (did you mean "users"?)`,
		}},
		{"vpc egress", `name: t
services:
  users: {run: x}
functions:
  f:
    run: x
    vpc:
      egress: [service:usrs, database:db, function:g, api.example.com, "api.example.com:443", servce:users]
`, []string{
			`t.yaml:8:16: functions.f.vpc.egress[0]: unknown service "usrs" (did you mean "users"?)`,
			`t.yaml:8:30: functions.f.vpc.egress[1]: unknown database "db" (no database is declared)`,
			`t.yaml:8:43: functions.f.vpc.egress[2]: unknown function "g" (did you mean "f"?)`,
			`t.yaml:8:95: functions.f.vpc.egress[5]: unknown egress kind "servce": write service:NAME, database:NAME, function:NAME or a host name (did you mean "service"?)`,
		}},
	})
}

// TestReferenceSpecLoads checks that the reference spec, which shows every
// field, passes every validator. Its one warning is right: it writes sticky
// sessions beside least_request, and sticky sessions need ring_hash.
func TestReferenceSpecLoads(t *testing.T) {
	const file = "testdata/nubo.reference.yaml"
	app, err := Load(file)
	if err != nil {
		t.Fatalf("Load(%s):\n%v", file, err)
	}
	want := []string{
		file + ":102:20: services.users.traffic.loadBalancing.algorithm: warning: sticky sessions use ring_hash; least_request is ignored while sticky is set",
	}
	var got []string
	for _, d := range app.Warnings() {
		got = append(got, d.String())
	}
	if !slices.Equal(got, want) {
		t.Errorf("warnings:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestTenMistakes checks that one run reports every mistake of a spec, the
// decoder's and the validators' together, each once, in the order of the file.
func TestTenMistakes(t *testing.T) {
	src := `name: t
services:
  api:
    run: ./api
    replica: 2
    stopGracePeriod: 10x
    port: 80800
    dependsOn: [users, cach]
    env:
      DB: ${secrets.db.PASSWOR}
  users:
    run: ./users
    dependsOn: [api]
    health:
      liveness: {http: {path: /h}, tcp: {}}
databases:
  users: {type: postgres}
  cache: {type: redis}
secrets:
  db: {keys: [PASSWORD]}
mesh:
  routes:
    api:
      - {destination: api, weight: 50}
queues:
  q: {deadLetter: {queue: q}}
`
	want := []string{
		`t.yaml:5:5: services.api.replica: unknown field "replica" (did you mean "replicas"?)`,
		`t.yaml:6:22: services.api.stopGracePeriod: invalid duration "10x": write e.g. 500ms, 30s, 5m, 1h30m or 30d`,
		`t.yaml:7:11: services.api.port: port 80800 is out of range 1..65535`,
		`t.yaml:8:17: services.api.dependsOn[0]: dependency cycle: api -> users -> api`,
		`t.yaml:8:24: services.api.dependsOn[1]: unknown service, database or function "cach" (did you mean "cache"?)`,
		`t.yaml:10:11: services.api.env.DB: ${secrets.db.PASSWOR}: secret "db" has no key "PASSWOR" (did you mean "PASSWORD"?)`,
		`t.yaml:15:7: services.users.health.liveness: a probe sets http and tcp: set only one`,
		`t.yaml:17:3: databases.users: "users" is already the name of a service (t.yaml:11:3): services, databases and functions share one name space (http://users)`,
		`t.yaml:23:5: mesh.routes.api: the weights of route "api" sum to 50, not 100`,
		`t.yaml:26:27: queues.q.deadLetter.queue: queue "q" cannot be its own dead-letter queue`,
	}
	got := diagnose(t, src)
	if !slices.Equal(got, want) {
		t.Errorf("got %d diagnostics:\n%s\nwant %d:\n%s", len(got), strings.Join(got, "\n"), len(want), strings.Join(want, "\n"))
	}
}

func TestPolicyPrincipalsAndKeys(t *testing.T) {
	got := diagStrings(t, `name: a
services:
  users: {run: x}
  ingress: {run: x}
mesh:
  policies:
    - name: p
      to: users
      action: allow
      from: {principals: [ingress, gateway, nubo-events, cluster.local/ns/a/sa/users, users]}
      when:
        - {key: request.methd, values: [GET]}
        - {key: "request.headers[x-user]", values: [a]}
`)
	want := []string{
		`t.yaml:4:3: services.ingress: "ingress" is reserved: nubo's own ingress calls services under that name in the mesh`,
		`t.yaml:12:17: mesh.policies[0].when[0].key: unknown key "request.methd": use request.method, request.path, request.headers[NAME] or source.namespace (did you mean "request.method"?)`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
