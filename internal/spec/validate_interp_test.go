package spec

import (
	"slices"
	"testing"
)

func TestScanInterpolations(t *testing.T) {
	for _, tc := range []struct {
		in           string
		want         []string
		unterminated bool
	}{
		{"plain", nil, false},
		{"${env.A}", []string{"env.A"}, false},
		{"a ${env.A} b ${services.x.url}", []string{"env.A", "services.x.url"}, false},
		{"$${env.A}", nil, false},  // an escaped, literal ${
		{"$$${env.A}", nil, false}, // "$" then an escaped "${env.A}"
		{"$${HOME} ${env.HOME}", []string{"env.HOME"}, false},
		{"${env.A} ${env.B", []string{"env.A"}, true},
		{"$HOME {x}", nil, false},
	} {
		got, unterminated := scanInterpolations(tc.in)
		if !slices.Equal(got, tc.want) || unterminated != tc.unterminated {
			t.Errorf("scanInterpolations(%q) = %q, %v; want %q, %v", tc.in, got, unterminated, tc.want, tc.unterminated)
		}
	}
}

func TestCheckInterpolations(t *testing.T) {
	const roots = "nubo knows env, services, functions, databases, secrets, config, stage"
	runDiagCases(t, []diagCase{
		{"env", `name: t
services:
  api:
    run: x
    env:
      A: ${env.HOME}
      B: ${env}
      C: "${env.}"
`, []string{
			`t.yaml:7:10: services.api.env.B: ${env}: write ${env.NAME}`,
			`t.yaml:8:10: services.api.env.C: ${env.}: write ${env.NAME}`,
		}},
		{"services, functions and databases", `name: t
services:
  users: {run: x}
  api:
    run: x
    env:
      A: ${services.usrs.url}
      B: ${services.users.uri}
      C: ${functions.fn.url}
      D: ${functions.fm.url}
      E: ${databases.db.password}
      F: ${databases.db.passwrd}
      G: ${databases.dbb.url}
      H: ${services.users}
      I: postgres://${databases.db.user}@${databases.db.host}:${databases.db.port}/app
functions:
  fn: {run: x}
databases:
  db: {type: postgres}
`, []string{
			`t.yaml:7:10: services.api.env.A: ${services.usrs.url}: unknown service "usrs" (did you mean "users"?)`,
			`t.yaml:8:10: services.api.env.B: ${services.users.uri}: unknown attribute "uri" of a service (did you mean "url"?); the only one is url`,
			`t.yaml:10:10: services.api.env.D: ${functions.fm.url}: unknown function "fm" (did you mean "fn"?)`,
			`t.yaml:12:10: services.api.env.F: ${databases.db.passwrd}: unknown attribute "passwrd" of a database (did you mean "password"?); write url, host, port, user, password, database or readUrl`,
			`t.yaml:13:10: services.api.env.G: ${databases.dbb.url}: unknown database "dbb" (did you mean "db"?)`,
			`t.yaml:14:10: services.api.env.H: ${services.users}: write ${services.NAME.url}`,
		}},
		{"secrets and config", `name: t
secrets:
  db: {keys: [PASSWORD, tls.crt]}
  empty: {}
config:
  app: {LEVEL: info}
services:
  api:
    run: x
    env:
      A: ${secrets.db.PASSWORD}
      B: ${secrets.dbb.PASSWORD}
      C: ${secrets.db.PASWORD}
      D: ${secrets.empty.X}
      E: ${config.app.LEVEL}
      F: ${config.ap.LEVEL}
      G: ${config.app.LEVL}
      H: ${secrets.db}
      I: ${secrets.db.tls.crt}
`, []string{
			`t.yaml:12:10: services.api.env.B: ${secrets.dbb.PASSWORD}: unknown secret "dbb" (did you mean "db"?)`,
			`t.yaml:13:10: services.api.env.C: ${secrets.db.PASWORD}: secret "db" has no key "PASWORD" (did you mean "PASSWORD"?)`,
			`t.yaml:14:10: services.api.env.D: ${secrets.empty.X}: secret "empty" has no key "X" (it declares no keys)`,
			`t.yaml:16:10: services.api.env.F: ${config.ap.LEVEL}: unknown config "ap" (did you mean "app"?)`,
			`t.yaml:17:10: services.api.env.G: ${config.app.LEVL}: config "app" has no key "LEVL" (did you mean "LEVEL"?)`,
			`t.yaml:18:10: services.api.env.H: ${secrets.db}: write ${secrets.NAME.KEY}`,
		}},
		{"stage variables", `name: t
services:
  users: {run: x}
  api:
    run: x
    env: {S: "${stage.svc}"}
gateway:
  stages:
    prod: {variables: {svc: users}}
  routes:
    - path: /a
      integration: {type: service, service: "${stage.svcc}"}
    - path: /b
      integration: {type: http, url: "http://${stage.svc}/b"}
`, []string{
			`t.yaml:6:14: services.api.env.S: ${stage.svc}: stage variables are only for gateway routes`,
			`t.yaml:12:45: gateway.routes[0].integration.service: ${stage.svcc}: no stage has a variable "svcc" (did you mean "svc"?)`,
		}},
		{"stage variables without stages", `name: t
gateway:
  routes:
    - path: /b
      integration: {type: http, url: "http://${stage.host}/b"}
`, []string{
			`t.yaml:5:38: gateway.routes[0].integration.url: ${stage.host}: no stage declares variables`,
		}},
		{"unknown roots", `name: t
services:
  users:
    run: ./users --port ${PORT}
    env: {A: "${servces.users.url}"}
`, []string{
			`t.yaml:4:10: services.users.run: ${PORT}: unknown reference "PORT"; ` + roots + `; write "$${PORT}" to pass "${PORT}" on as it is`,
			`t.yaml:5:14: services.users.env.A: ${servces.users.url}: unknown reference "servces" (did you mean "services"?); ` + roots,
		}},
		{"unterminated and escaped", `name: t
services:
  users:
    run: echo $${HOME} ${env.HOME}
    env: {A: "${env.HOME", B: "$${not.checked}"}
`, []string{
			`t.yaml:5:14: services.users.env.A: unterminated "${": close it with "}", or write "$${" for a literal "${"`,
		}},
		{"dashboard variables are Grafana's", `name: t
observability:
  dashboards:
    main:
      title: "Main ${__from}"
      variables: [{name: service, type: custom, values: [a]}]
      panels:
        - title: p
          targets:
            - {expr: 'rate(x{service=~"$service"}[1m])'}
            - {expr: 'rate(x{service=~"${service:regex}"}[1m])'}
            - {expr: 'rate(x{service=~"${servce}"}[1m])'}
`, []string{
			`t.yaml:12:22: observability.dashboards.main.panels[0].targets[2].expr: ${servce}: "servce" is not a variable of this dashboard (did you mean "service"?)`,
		}},
	})
}
