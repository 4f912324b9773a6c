package k8s

import (
	"context"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/validation"
)

// longName is a name of exactly 63 characters, the most nubo accepts,
// starting with prefix so that each part of a spec gets its own.
func longName(prefix string) string {
	return prefix + "-" + strings.Repeat("x", 62-len(prefix))
}

// longNamesSpec uses the longest names nubo accepts in every section that
// becomes Kubernetes objects, so that every prefix and suffix the
// rendering adds is tried at its worst.
func longNamesSpec() string {
	r := strings.NewReplacer(
		"APP", longName("app"), "CFG", longName("cfg"), "SEC", longName("sec"),
		"SVC", longName("svc"), "ING", longName("ing"), "PG", longName("pg"),
		"KV", longName("kv"), "FN", longName("fn"), "QUEUE", longName("queue"),
		"TOPIC", longName("topic"), "SCHED", longName("sched"), "RULE", longName("rule"),
		"DASH", longName("dash"), "SLO", longName("slo"), "CHAN", longName("chan"),
		"HOST", longName("host"), "POLICY", longName("policy"),
	)
	return r.Replace(`name: APP
config:
  CFG: {A: b}
secrets:
  SEC: {keys: [key]}
services:
  SVC:
    image: web:1
    run: x
    port: 8080
    envFrom: {config: [CFG], secrets: [SEC]}
    env: {DB_URL: "${databases.PG.url}", REDIS_URL: "${databases.KV.url}"}
    scaling: {min: 1, max: 2, targetCPU: 50}
    resources: {cpu: 100m, memory: 64Mi}
    health: {readiness: {http: {path: /ready}}}
mesh:
  routes:
    HOST: [{destination: SVC, weight: 100}]
  policies:
    - {name: POLICY, to: SVC, action: allow, from: {principals: [SVC]}}
ingress:
  - name: ING
    host: shop.example.com
    tls: true
    paths: [{path: /, to: service:SVC}]
databases:
  PG:
    type: postgres
    backup: {enabled: true, schedule: "0 3 * * *", destination: s3://backups/pg}
    security:
      access: {rbac: true, roles: [{name: rw, grants: [readwrite], services: [SVC]}]}
      network: {ingress: [{from: [{service: SVC}], ports: [{protocol: TCP, port: 5432}]}]}
  KV: {type: redis, monitoring: {enabled: true}}
functions:
  FN:
    run: x
    image: fn:1
    vpc: {egress: ["service:SVC"]}
    triggers: [{queue: QUEUE}]
queues:
  QUEUE: {}
topics:
  TOPIC: {subscriptions: [{endpoint: function:FN}]}
events:
  Created: {source: test}
rules:
  RULE: {filter: {exact: {type: Created}}, target: function:FN}
schedules:
  SCHED: {expression: "@every 1h", target: queue:QUEUE}
gateway:
  authorizers:
    keys: {type: apiKey, identitySource: header.x-api-key, keys: {secret: SEC}}
  routes:
    - {path: /x, methods: [GET], authorizer: keys, integration: {type: service, service: SVC}}
eventStore:
  encryption: {enabled: true, key: {secret: SEC}}
observability:
  metrics: {scrape: [{service: SVC, path: /metrics}]}
  alerts:
    - {name: down, expr: up == 0, channels: [CHAN]}
  channels:
    CHAN: {type: webhook, url: http://alerts.example.com/hook}
  dashboards:
    DASH:
      title: Long
      panels: [{title: Up, targets: [{expr: up}]}]
  slos:
    SLO:
      objective: 99
      indicators: [{name: a, type: ratio, errors: 'sum(rate(x[{{.window}}]))', total: 'sum(rate(y[{{.window}}]))'}]
`)
}

// nameProblems checks the names in obj by the rules Kubernetes applies:
// its own name for its kind, its labels, and the names of its pod
// template's containers and volumes.
func nameProblems(obj *unstructured.Unstructured) []string {
	var out []string
	check := func(what string, errs []string) {
		for _, e := range errs {
			out = append(out, what+": "+e)
		}
	}
	name := obj.GetName()
	switch obj.GetKind() {
	case "Namespace":
		check("name", validation.IsDNS1123Label(name))
	case "Service":
		check("name", validation.IsDNS1035Label(name))
	default:
		check("name", validation.IsDNS1123Subdomain(name))
	}
	for k, v := range obj.GetLabels() {
		check("label "+k, validation.IsQualifiedName(k))
		check("label "+k, validation.IsValidLabelValue(v))
	}
	for _, path := range [][]string{{"spec", "template", "spec"}, {"spec", "jobTemplate", "spec", "template", "spec"}} {
		pod, ok, _ := unstructured.NestedMap(obj.Object, path...)
		if !ok {
			continue
		}
		for _, list := range []string{"containers", "initContainers", "volumes"} {
			items, _, _ := unstructured.NestedSlice(pod, list)
			for _, it := range items {
				n, _, _ := unstructured.NestedString(it.(map[string]any), "name")
				check(list+" "+n, validation.IsDNS1123Label(n))
			}
		}
	}
	return out
}

// TestLongestNamesAreValidNames renders a spec whose names are all as long
// as nubo allows and checks every object's names by Kubernetes' rules for
// its kind; then, where the control plane can run, the API server applies
// them all, which checks what the rules above do not know.
func TestLongestNamesAreValidNames(t *testing.T) {
	app := parseSpec(t, longNamesSpec())
	for _, variant := range []string{"knative", "deployment"} {
		app.Kubernetes.Functions = variant
		res, err := Render(app, Options{})
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range res.Objects {
			for _, p := range nameProblems(o) {
				t.Errorf("%s (functions: %s): %s", ObjectName(o), variant, p)
			}
		}
	}

	cp := sharedControlPlane(t)
	cluster, err := NewCluster(cp.Config)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	app.Kubernetes.Functions = "knative"
	res, err := cluster.Prepare(ctx, app, Options{Secrets: fakeSecrets(app)})
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range res.Objects {
		if _, err := cluster.Apply(ctx, o, false); err != nil {
			t.Errorf("apply: %v", err)
		}
	}
}
