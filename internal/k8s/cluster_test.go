package k8s

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"

	"github.com/nubo-dev/nubo/internal/k8s/k8stest"
	"github.com/nubo-dev/nubo/internal/nubotest"

	"github.com/nubo-dev/nubo/internal/secrets"
	"github.com/nubo-dev/nubo/internal/spec"
)

// fakeSecrets gives every key of every secret a made-up value.
func fakeSecrets(app *spec.App) secrets.Values {
	out := secrets.Values{}
	for name, s := range app.Secrets {
		out[name] = map[string]secrets.Value{}
		for _, k := range s.Keys {
			out[name][k] = secrets.NewValue("test-" + name + "-" + k)
		}
	}
	return out
}

func TestApplyEveryObject(t *testing.T) {
	cp := sharedControlPlane(t)
	cluster, err := NewCluster(cp.Config)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, file, ns string
		tweak          func(*spec.App)
	}{
		{"shop", "../../examples/shop/nubo.yaml", "apply-shop", nil},
		{"reference", "../spec/testdata/nubo.reference.yaml", "apply-reference", nil},
		{"reference with the other variants", "../spec/testdata/nubo.reference.yaml", "apply-variants", func(a *spec.App) {
			a.Kubernetes.Functions = "deployment"
			a.Kubernetes.Ingress = "gateway-api"
			a.Mesh.Enforcement = "audit"
			a.Observability.Tracing.Export.OTLP = "http://jaeger.tracing:4318"
			a.Observability.Tracing.Headers = map[string]string{"Authorization": "Bearer ${secrets.api-keys.partner-a}"}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			app, err := spec.Load(tc.file)
			if err != nil {
				t.Fatal(err)
			}
			if tc.tweak != nil {
				tc.tweak(app)
			}
			ctx := context.Background()
			res, err := cluster.Prepare(ctx, app, Options{Namespace: tc.ns, Secrets: fakeSecrets(app)})
			if err != nil {
				t.Fatal(err)
			}
			for _, o := range res.Objects {
				if _, err := cluster.Apply(ctx, o, false); err != nil {
					t.Errorf("apply: %v", err)
				}
			}
		})
	}
}

// TestWrongInputsAreRejected checks that the server's validation reaches
// the user whole: strict field validation for unknown fields (of
// Kubernetes' kinds and of CRDs), and ordinary validation errors.
func TestWrongInputsAreRejected(t *testing.T) {
	cp := sharedControlPlane(t)
	cluster, err := NewCluster(cp.Config)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	const ns = "rejected"
	if err := k8stest.CreateNamespace(ctx, cp.Config, ns); err != nil {
		t.Fatal(err)
	}
	deployment := func(spec map[string]any) *unstructured.Unstructured {
		base := map[string]any{
			"selector": map[string]any{"matchLabels": map[string]any{"app": "web"}},
			"template": map[string]any{
				"metadata": map[string]any{"labels": map[string]any{"app": "web"}},
				"spec":     map[string]any{"containers": []any{map[string]any{"name": "web", "image": "web:1"}}},
			},
		}
		for k, v := range spec {
			base[k] = v
		}
		return &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "apps/v1", "kind": "Deployment",
			"metadata": map[string]any{"name": "web", "namespace": ns},
			"spec":     base,
		}}
	}
	custom := func(apiVersion, kind string, spec map[string]any) *unstructured.Unstructured {
		return &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": apiVersion, "kind": kind,
			"metadata": map[string]any{"name": "users", "namespace": ns},
			"spec":     spec,
		}}
	}
	tests := []struct {
		name string
		obj  *unstructured.Unstructured
		want []string
	}{
		{
			"unknown field of a Deployment",
			deployment(map[string]any{"replicaz": int64(2)}),
			[]string{"Deployment rejected/web", ".spec.replicaz: field not declared in schema"},
		},
		{
			"invalid value of a Deployment",
			deployment(map[string]any{"replicas": int64(-1)}),
			[]string{"Deployment rejected/web", "spec.replicas", "must be greater than or equal to 0"},
		},
		{
			"unknown field of an Istio VirtualService",
			custom("networking.istio.io/v1", "VirtualService", map[string]any{
				"hosts": []any{"users"},
				"http":  []any{map[string]any{"retrys": map[string]any{"attempts": int64(2)}}},
			}),
			[]string{"VirtualService rejected/users", ".spec.http[0].retrys: field not declared in schema"},
		},
		{
			"value outside a CRD's enum",
			custom("networking.istio.io/v1", "DestinationRule", map[string]any{
				"host":          "users",
				"trafficPolicy": map[string]any{"loadBalancer": map[string]any{"simple": "FASTEST"}},
			}),
			[]string{"DestinationRule rejected/users", "spec.trafficPolicy.loadBalancer.simple", `Unsupported value: "FASTEST"`},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := cluster.Apply(ctx, tc.obj, false)
			if err == nil {
				t.Fatal("applied; want the server to refuse it")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}

	// A spec nubo accepts can still hold what Kubernetes refuses: the
	// rendering carries the server's message back, naming the object.
	app := parseSpec(t, `name: labelled
kubernetes:
  labels: {"team name": web}
config:
  settings: {A: "1"}
`)
	res, err := Render(app, Options{Namespace: ns})
	if err != nil {
		t.Fatal(err)
	}
	var cm *unstructured.Unstructured
	for _, o := range res.Objects {
		if o.GetKind() == "ConfigMap" {
			cm = o
		}
	}
	_, err = cluster.Apply(ctx, cm, false)
	if err == nil || !strings.Contains(err.Error(), "ConfigMap rejected/settings") || !strings.Contains(err.Error(), `metadata.labels: Invalid value: "team name"`) {
		t.Errorf("apply of a ConfigMap with a bad label: got %v", err)
	}
}

// parseSpec loads a spec written in a test, from a file in a temporary
// folder (the components' ConfigMap reads the spec's files).
func parseSpec(t *testing.T, doc string) *spec.App {
	t.Helper()
	file := filepath.Join(t.TempDir(), "nubo.yaml")
	if err := os.WriteFile(file, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	app, err := spec.Load(file)
	if err != nil {
		t.Fatalf("load the spec: %v", err)
	}
	return app
}

// TestDeployDiffAndPrune deploys a small app twice, changes it, and checks
// what diff reports, that secrets and generated passwords reach the
// cluster and stay, and that prune deletes exactly what is no longer
// rendered.
func TestDeployDiffAndPrune(t *testing.T) {
	cp := sharedControlPlane(t)
	cluster, err := NewCluster(cp.Config)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	const doc = `name: pruned
namespace: prune-test
kubernetes: {mesh: none, monitoring: none}
secrets:
  api: {keys: [TOKEN]}
config:
  settings: {MODE: %s}
databases:
  db:
    type: postgres
    security:
      access:
        roles: [{name: app_rw, grants: [readwrite], services: [web]}]
services:
  web:
    image: web:1
    port: 8080
    env:
      DATABASE_URL: ${databases.db.url}
      TOKEN: ${secrets.api.TOKEN}
%s`
	const extra = `  worker:
    image: worker:1
`
	deploy := func(t *testing.T, mode, more, token string, prune bool) string {
		t.Helper()
		app := parseSpec(t, fmt.Sprintf(doc, mode, more))
		vals := secrets.Values{"api": {"TOKEN": secrets.NewValue(token)}}
		res, err := cluster.Prepare(ctx, app, Options{Secrets: vals})
		if err != nil {
			t.Fatal(err)
		}
		var out strings.Builder
		if err := cluster.Deploy(ctx, res.Objects, app.Name, app.Namespace, DeployOptions{Prune: prune, Out: &out}); err != nil {
			t.Fatalf("deploy: %v\n%s", err, out.String())
		}
		return out.String()
	}
	diff := func(t *testing.T, mode, more, token string) string {
		t.Helper()
		app := parseSpec(t, fmt.Sprintf(doc, mode, more))
		res, err := cluster.Prepare(ctx, app, Options{Secrets: secrets.Values{"api": {"TOKEN": secrets.NewValue(token)}}})
		if err != nil {
			t.Fatal(err)
		}
		changes, err := cluster.Diff(ctx, res.Objects, app.Name, app.Namespace)
		if err != nil {
			t.Fatal(err)
		}
		var out strings.Builder
		WriteChanges(&out, changes, false)
		return out.String()
	}
	get := func(apiVersion, kind, name string) *unstructured.Unstructured {
		t.Helper()
		o := &unstructured.Unstructured{}
		o.SetAPIVersion(apiVersion)
		o.SetKind(kind)
		o.SetNamespace("prune-test")
		o.SetName(name)
		live, err := cluster.Get(ctx, o)
		if err != nil {
			t.Fatal(err)
		}
		return live
	}
	secretValue := func(name, key string) string {
		t.Helper()
		live := get("v1", "Secret", name)
		if live == nil {
			t.Fatalf("no Secret %s", name)
		}
		v, _, _ := unstructured.NestedString(live.Object, "data", key)
		dec, _ := base64.StdEncoding.DecodeString(v)
		return string(dec)
	}

	if d := diff(t, "a", extra, "one"); !strings.Contains(d, "+ Deployment prune-test/web created (its namespace does not exist yet") {
		t.Errorf("diff before the first deploy:\n%s", d)
	}
	out := deploy(t, "a", extra, "one", false)
	for _, want := range []string{"namespace/prune-test created", "deployment.apps/web created", "deployment.apps/worker created", "secret/api created", "cluster.postgresql.cnpg.io/db created"} {
		if !strings.Contains(out, want) {
			t.Errorf("first deploy output lacks %q:\n%s", want, out)
		}
	}
	if got := secretValue("api", "TOKEN"); got != "one" {
		t.Errorf("Secret api TOKEN = %q, want the value pushed", got)
	}
	password := secretValue("db-role-app-rw", "password")
	if len(password) != 32 {
		t.Errorf("generated password %q: want 32 characters", password)
	}

	// A second deploy of the same spec changes nothing, and keeps the
	// generated password.
	out = deploy(t, "a", extra, "one", false)
	if strings.Contains(out, " created") || strings.Contains(out, " configured") {
		t.Errorf("second deploy changed something:\n%s", out)
	}
	if got := secretValue("db-role-app-rw", "password"); got != password {
		t.Error("the second deploy changed the generated password")
	}
	if d := diff(t, "a", extra, "one"); !strings.Contains(d, "0 to create, 0 to change") {
		t.Errorf("diff of the deployed spec:\n%s", d)
	}

	// A changed config value and secret: the diff shows the one, and only a
	// digest of the other.
	d := diff(t, "b", extra, "two")
	for _, want := range []string{"~ ConfigMap prune-test/settings changed", "-   MODE: a", "+   MODE: b", "~ Secret prune-test/api changed", "TOKEN: (redacted, sha256:"} {
		if !strings.Contains(d, want) {
			t.Errorf("diff lacks %q:\n%s", want, d)
		}
	}
	if strings.Contains(d, "dHdv") || strings.Contains(d, "b25l") { // base64 of two, one
		t.Errorf("diff shows a secret value:\n%s", d)
	}

	// Without worker: diff lists it, deploy --prune deletes exactly it.
	d = diff(t, "a", "", "one")
	if !strings.Contains(d, "- Deployment prune-test/worker no longer rendered (deleted with --prune)") || strings.Contains(d, "prune-test/web no longer") {
		t.Errorf("diff without worker:\n%s", d)
	}
	out = deploy(t, "a", "", "one", true)
	for _, want := range []string{"deployment.apps/worker deleted", "service/worker deleted", "serviceaccount/worker deleted"} {
		if !strings.Contains(out, want) {
			t.Errorf("prune output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "web deleted") || strings.Contains(out, "namespace/prune-test deleted") {
		t.Errorf("prune deleted what is still rendered:\n%s", out)
	}
	nubotest.WaitFor(t, 30*time.Second, func() error {
		if get("apps/v1", "Deployment", "worker") != nil {
			return errors.New("Deployment worker still exists")
		}
		return nil
	})
	if get("apps/v1", "Deployment", "web") == nil {
		t.Error("Deployment web was pruned")
	}
}

// TestPruneLeavesOthersObjects: objects with the app's labels that nubo did
// not apply (a controller's copies) are never pruned.
func TestPruneLeavesOthersObjects(t *testing.T) {
	cp := sharedControlPlane(t)
	cluster, err := NewCluster(cp.Config)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	const ns = "prune-others"
	if err := k8stest.CreateNamespace(ctx, cp.Config, ns); err != nil {
		t.Fatal(err)
	}
	dyn, err := dynamic.NewForConfig(cp.Config)
	if err != nil {
		t.Fatal(err)
	}
	copied := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "v1", "kind": "Secret",
		"metadata": map[string]any{"name": "db-app", "namespace": ns, "labels": map[string]any{LabelManagedBy: ManagedBy, LabelInstance: "others"}},
	}}
	if _, err := dyn.Resource(schema.GroupVersionResource{Version: "v1", Resource: "secrets"}).Namespace(ns).
		Create(ctx, copied, metav1.CreateOptions{FieldManager: "some-operator"}); err != nil {
		t.Fatal(err)
	}
	stale, err := cluster.Stale(ctx, "others", ns, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(stale) != 0 {
		t.Errorf("would prune %d objects nubo did not apply: %s", len(stale), ObjectName(stale[0]))
	}
}

// TestWaitNamesWhatIsNotReady: without controllers nothing rolls out; the
// error names the Deployment and the wait gives up at the timeout.
func TestWaitNamesWhatIsNotReady(t *testing.T) {
	cp := sharedControlPlane(t)
	cluster, err := NewCluster(cp.Config)
	if err != nil {
		t.Fatal(err)
	}
	app := parseSpec(t, "name: stuck\nnamespace: wait-test\nkubernetes: {mesh: none}\nservices:\n  web: {image: web:1}\n")
	res, err := Render(app, Options{})
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	err = cluster.Deploy(context.Background(), res.Objects, app.Name, app.Namespace, DeployOptions{Wait: true, Timeout: 1500 * time.Millisecond, Out: &out})
	if err == nil {
		t.Fatalf("deploy --wait succeeded with nothing to run the pods:\n%s", out.String())
	}
	for _, want := range []string{"Deployment wait-test/web did not become ready", "gave up waiting after"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	if !strings.Contains(out.String(), "waiting: deployment.apps/web") {
		t.Errorf("no progress line for the Deployment:\n%s", out.String())
	}
}
