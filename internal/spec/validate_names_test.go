package spec

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCheckNames(t *testing.T) {
	runDiagCases(t, []diagCase{
		{"services, databases and functions share names", `name: t
services:
  users: {run: x}
databases:
  users: {type: postgres}
functions:
  users: {run: x}
`, []string{
			`t.yaml:5:3: databases.users: "users" is already the name of a service (t.yaml:3:3): services, databases and functions share one name space (http://users)`,
			`t.yaml:7:3: functions.users: "users" is already the name of a service (t.yaml:3:3): services, databases and functions share one name space (http://users)`,
		}},
		{"the later name in the file is reported", `name: t
functions:
  api: {run: x}
services:
  api: {run: x}
`, []string{
			`t.yaml:5:3: services.api: "api" is already the name of a function (t.yaml:3:3): services, databases and functions share one name space (http://api)`,
		}},
		{"ingress names", `name: t
services:
  web: {run: x}
ingress:
  - name: public
    paths: [{path: /, to: service:web}]
  - name: public
    paths: [{path: /, to: service:web}]
  - name: Public_1
    paths: [{path: /, to: service:web}]
`, []string{
			`t.yaml:7:11: ingress[1].name: ingress "public" is already declared at ingress[0]`,
			`t.yaml:9:11: ingress[2].name: "Public_1" is not a valid name: use ` + dnsWhat,
		}},
		{"policy names", `name: t
services:
  web: {run: x}
mesh:
  policies:
    - {name: p, to: web, action: allow}
    - {name: p, to: web, action: deny}
    - {name: "P!", to: web, action: deny}
`, []string{
			`t.yaml:7:14: mesh.policies[1].name: policy "p" is already declared at mesh.policies[0]`,
			`t.yaml:8:14: mesh.policies[2].name: "P!" is not a valid name: use ` + dnsWhat,
		}},
		{"alert names, databases' included", `name: t
databases:
  db:
    type: postgres
    monitoring:
      alerts:
        - {name: down, expr: up == 0}
observability:
  alerts:
    - {name: down, expr: up == 0}
    - {name: slow, expr: up == 0}
    - {name: slow, expr: up == 0}
`, []string{
			`t.yaml:10:14: observability.alerts[0].name: alert "down" is already declared at databases.db.monitoring.alerts[0]`,
			`t.yaml:12:14: observability.alerts[2].name: alert "slow" is already declared at observability.alerts[1]`,
		}},
		{"dashboard variable names", `name: t
observability:
  dashboards:
    main:
      variables:
        - {name: svc, type: custom, values: [a]}
        - {name: svc, type: custom, values: [b]}
    other:
      variables:
        - {name: svc, type: custom, values: [a]}
        - {name: datasource, type: custom, values: [a]}
`, []string{
			`t.yaml:7:18: observability.dashboards.main.variables[1].name: variable "svc" is already declared at observability.dashboards.main.variables[0]`,
			`t.yaml:11:18: observability.dashboards.other.variables[1].name: "datasource" is reserved: nubo adds the variable that picks the Prometheus data source of every panel`,
		}},
		{"database role names", `name: t
services:
  web: {run: x}
databases:
  db:
    type: postgres
    security:
      access:
        roles:
          - {name: rw, services: [web]}
          - {name: rw}
`, []string{
			`t.yaml:11:20: databases.db.security.access.roles[1].name: role "rw" is already declared at databases.db.security.access.roles[0]`,
		}},
		{"log parser and filter names", `name: t
observability:
  logs:
    parsers:
      - {name: p, pattern: '(?P<a>a)'}
      - {name: p, pattern: '(?P<b>b)'}
    filters:
      - {name: f, condition: "true", action: drop}
      - {name: f, condition: "true", action: keep}
`, []string{
			`t.yaml:6:16: observability.logs.parsers[1].name: log parser "p" is already declared at observability.logs.parsers[0]`,
			`t.yaml:9:16: observability.logs.filters[1].name: log filter "f" is already declared at observability.logs.filters[0]`,
		}},
		{"indicator names", `name: t
observability:
  slos:
    api:
      objective: 99
      indicators:
        - {name: a, type: ratio, errors: up, total: up}
        - {name: a, type: ratio, errors: up, total: up}
`, []string{
			`t.yaml:8:18: observability.slos.api.indicators[1].name: indicator "a" is already declared at observability.slos.api.indicators[0]`,
		}},
	})
}

// TestNameSpaceAcrossIncludes checks that a name clash between files is
// reported in the file loaded later, whatever the order of the sections.
func TestNameSpaceAcrossIncludes(t *testing.T) {
	dir := t.TempDir()
	main := filepath.Join(dir, "nubo.yaml")
	extra := filepath.Join(dir, "extra.yaml")
	if err := os.WriteFile(main, []byte("name: t\ninclude: [extra.yaml]\nfunctions:\n  users: {run: x}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(extra, []byte("services:\n  users: {run: x}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Load(main)
	want := extra + `:2:3: services.users: "users" is already the name of a function (` + main +
		`:4:3): services, databases and functions share one name space (http://users)`
	if err == nil || err.Error() != want {
		t.Errorf("got %v\nwant %s", err, want)
	}
}

// TestKubernetesNames checks each name that becomes a Kubernetes name by
// the rule Kubernetes applies to that kind: the app's name and namespace
// (a Namespace), services, databases, functions and mesh hosts (a Service:
// it must start with a letter), everything else (ConfigMaps, Secrets,
// Ingresses, dashboards' ConfigMaps, PrometheusRules...) an RFC 1123 label,
// image pull secrets a subdomain; 63 characters pass and 64 do not.
func TestKubernetesNames(t *testing.T) {
	long := strings.Repeat("a", 63)
	runDiagCases(t, []diagCase{
		{"the app's name", "name: Shop_App\n", []string{
			`t.yaml:1:7: name: "Shop_App" is not a valid name: use ` + dnsWhat,
		}},
		{"the namespace", "name: shop\nnamespace: prod.eu\n", []string{
			`t.yaml:2:12: namespace: "prod.eu" is not a valid name: use ` + dnsWhat,
		}},
		{"63 characters are a name, 64 are not", "name: " + long + "\nnamespace: " + long + "a\n", []string{
			`t.yaml:2:12: namespace: "` + long + `a" is not a valid name: use ` + dnsWhat,
		}},
		{"Service names start with a letter", `name: t
services:
  1api: {run: x}
  api-1: {run: x}
databases:
  9db: {type: redis}
functions:
  0fn: {run: x}
mesh:
  routes:
    2web: [{destination: api-1, weight: 100}]
`, []string{
			`t.yaml:3:3: services.1api: "1api" is not a valid name: use ` + serviceWhat,
			`t.yaml:6:3: databases.9db: "9db" is not a valid name: use ` + serviceWhat,
			`t.yaml:8:3: functions.0fn: "0fn" is not a valid name: use ` + serviceWhat,
			`t.yaml:11:5: mesh.routes.2web: "2web" is not a valid name: use ` + serviceWhat,
		}},
		{"every named section", `name: t
config:
  App_Config: {A: b}
secrets:
  db.password: {keys: [k]}
queues:
  Q: {}
topics:
  t_1: {}
observability:
  dashboards:
    Overview: {title: x}
  slos:
    ` + long + `a: {objective: 99, indicators: [{name: a, type: ratio, errors: up, total: up}]}
`, []string{
			`t.yaml:3:3: config.App_Config: "App_Config" is not a valid name: use ` + dnsWhat,
			`t.yaml:5:3: secrets["db.password"]: "db.password" is not a valid name: use ` + dnsWhat,
			`t.yaml:7:3: queues.Q: "Q" is not a valid name: use ` + dnsWhat,
			`t.yaml:9:3: topics.t_1: "t_1" is not a valid name: use ` + dnsWhat,
			`t.yaml:12:5: observability.dashboards.Overview: "Overview" is not a valid name: use ` + dnsWhat,
			`t.yaml:14:5: observability.slos.` + long + `a: "` + long + `a" is not a valid name: use ` + dnsWhat,
		}},
		{"database role names, which name Secrets", `name: t
databases:
  db:
    type: postgres
    security:
      access:
        roles: [{name: users_rw}, {name: Reporting}, {name: rw_}, {name: read only}, {name: 1st}]
`, []string{
			`t.yaml:7:61: databases.db.security.access.roles[2].name: "rw_" is not a valid name: use ` + nameRules["role"].what,
			`t.yaml:7:74: databases.db.security.access.roles[3].name: "read only" is not a valid name: use ` + nameRules["role"].what,
			`t.yaml:7:93: databases.db.security.access.roles[4].name: "1st" is not a valid name: use ` + nameRules["role"].what,
		}},
		{"image pull secrets", `name: t
kubernetes:
  imagePullSecrets: [registry.example.com, Registry]
`, []string{
			`t.yaml:3:44: kubernetes.imagePullSecrets[1]: "Registry" is not a valid name: use ` + subdomainWhat,
		}},
	})
}
