package k8s

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// TestContainerEnv checks how ${...} becomes Kubernetes env: valueFrom for
// a whole reference, a helper expanded by the kubelet inside a longer
// value, literal "$(" kept literal, and nubo's own variables.
func TestContainerEnv(t *testing.T) {
	app := parseSpec(t, `name: envs
secrets:
  api: {keys: [TOKEN]}
config:
  cfg: {MODE: fast}
databases:
  pg:
    type: postgres
    security: {access: {roles: [{name: web_rw, grants: [readwrite], services: [web]}]}}
  kv: {type: redis}
services:
  other: {image: other:1, expose: {port: 8080}}
  web:
    image: web:1
    env:
      WHOLE: ${secrets.api.TOKEN}
      INSIDE: "Bearer ${secrets.api.TOKEN}"
      TWICE: "${secrets.api.TOKEN}:${secrets.api.TOKEN}"
      MODE: ${config.cfg.MODE}
      SHELL: "$(date) and $${HOME}"
      FROM_ENV: ${env.REGION}
      OTHER: ${services.other.url}/v1
      PG: ${databases.pg.url}
      PG_USER: ${databases.pg.user}
      PG_READ: ${databases.pg.readUrl}
      PG_DB: ${databases.pg.database}
      KV: ${databases.kv.url}
  job:
    image: job:1
    env:
      PG: ${databases.pg.url}
`)
	b := &builder{app: app, ns: "envs", opts: Options{Getenv: func(k string) string {
		if k == "REGION" {
			return "eu-1"
		}
		return ""
	}}}
	env, _, err := b.containerEnv("services.web", "web", app.Services["web"].Env, app.Services["web"].EnvFrom, 8080)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]corev1.EnvVar{}
	var order []string
	for _, e := range env {
		got[e.Name] = e
		order = append(order, e.Name)
	}
	value := func(name, want string) {
		t.Helper()
		if e := got[name]; e.Value != want || e.ValueFrom != nil {
			t.Errorf("%s = %+v, want the value %q", name, e, want)
		}
	}
	secret := func(name, secretName, key string) {
		t.Helper()
		e := got[name]
		if e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil || e.ValueFrom.SecretKeyRef.Name != secretName || e.ValueFrom.SecretKeyRef.Key != key {
			t.Errorf("%s = %+v, want the Secret %s key %s", name, e, secretName, key)
		}
	}
	secret("WHOLE", "api", "TOKEN")
	secret("NUBO_SECRET_API_TOKEN", "api", "TOKEN")
	value("INSIDE", "Bearer $(NUBO_SECRET_API_TOKEN)")
	value("TWICE", "$(NUBO_SECRET_API_TOKEN):$(NUBO_SECRET_API_TOKEN)")
	if e := got["MODE"]; e.ValueFrom == nil || e.ValueFrom.ConfigMapKeyRef == nil || e.ValueFrom.ConfigMapKeyRef.Key != "MODE" {
		t.Errorf("MODE = %+v, want the ConfigMap cfg key MODE", e)
	}
	value("SHELL", "$$(date) and ${HOME}")
	value("FROM_ENV", "eu-1")
	value("OTHER", "http://other:8080/v1")
	value("PG", "postgresql://web_rw:$(NUBO_DB_PG_WEB_RW_PASSWORD)@pg-rw:5432/app")
	secret("NUBO_DB_PG_WEB_RW_PASSWORD", "pg-role-web-rw", "password")
	value("PG_USER", "web_rw")
	value("PG_READ", "postgresql://web_rw:$(NUBO_DB_PG_WEB_RW_PASSWORD)@pg-ro:5432/app")
	value("PG_DB", "app")
	value("KV", "redis://default:$(NUBO_DB_KV_PASSWORD)@kv:6379/0")
	secret("NUBO_DB_KV_PASSWORD", "kv-auth", "password")
	value("PORT", "8080")
	value("NUBO_SERVICE", "web")
	if e := got["NUBO_REPLICA"]; e.ValueFrom == nil || e.ValueFrom.FieldRef == nil {
		t.Errorf("NUBO_REPLICA = %+v, want the pod's name", e)
	}
	// A helper must come before the variables that expand it.
	pos := map[string]int{}
	for i, n := range order {
		pos[n] = i
	}
	if pos["NUBO_SECRET_API_TOKEN"] > pos["INSIDE"] || pos["NUBO_DB_PG_WEB_RW_PASSWORD"] > pos["PG"] || pos["NUBO_DB_KV_PASSWORD"] > pos["KV"] {
		t.Errorf("helpers after their users: %v", order)
	}

	// A workload without a role connects as the database's owner.
	env, _, err = b.containerEnv("services.job", "job", app.Services["job"].Env, app.Services["job"].EnvFrom, 8080)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range env {
		if e.Name == "PG" && (e.ValueFrom == nil || e.ValueFrom.SecretKeyRef.Name != "pg-app" || e.ValueFrom.SecretKeyRef.Key != "uri") {
			t.Errorf("job's PG = %+v, want CloudNativePG's pg-app uri", e)
		}
	}
}

// TestReplicaNameOnlyWhereAllowed checks that NUBO_REPLICA (a fieldRef)
// is in Deployments' pods and not in Knative Services, whose webhook
// refuses fieldRef by default; tools/knative runs Knative's own checks.
func TestReplicaNameOnlyWhereAllowed(t *testing.T) {
	app := parseSpec(t, "name: r\nfunctions:\n  fn: {run: x, image: fn:1}\nservices:\n  web: {image: web:1}\n")
	knativeChecked := 0
	for _, variant := range []string{"knative", "deployment"} {
		app.Kubernetes.Functions = variant
		res, err := Render(app, Options{})
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range res.Objects {
			if o.GetKind() != "Deployment" && o.GetKind() != "Service" {
				continue
			}
			containers, _, _ := unstructured.NestedSlice(o.Object, "spec", "template", "spec", "containers")
			for _, c := range containers {
				env, _, _ := unstructured.NestedSlice(c.(map[string]any), "env")
				replica := false
				for _, e := range env {
					if e.(map[string]any)["name"] == "NUBO_REPLICA" {
						replica = true
					}
				}
				want := o.GetKind() == "Deployment"
				if o.GetAPIVersion() == "serving.knative.dev/v1" {
					knativeChecked++
				}
				if replica != want {
					t.Errorf("functions: %s: %s has NUBO_REPLICA = %v, want %v", variant, ObjectName(o), replica, want)
				}
			}
		}
	}
	if knativeChecked != 1 {
		t.Errorf("checked %d Knative Services' containers, want 1", knativeChecked)
	}
}
