package k8s

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/nubo-dev/nubo/internal/secrets"
	"github.com/nubo-dev/nubo/internal/spec"
)

var update = flag.Bool("update", false, "rewrite the golden files of testdata/ from the current rendering")

// goldenOptions fix what would otherwise come from the build or the
// environment.
var goldenOptions = Options{Image: "ghcr.io/nubo-dev/nubo:v0.0.0-test"}

func loadSpec(t *testing.T, file string) *spec.App {
	t.Helper()
	app, err := spec.Load(file)
	if err != nil {
		t.Fatalf("load %s: %v", file, err)
	}
	return app
}

// TestShopGolden compares the rendering of examples/shop, file by file,
// with testdata/shop. After a deliberate change, rewrite them with
// go test ./internal/k8s -run TestShopGolden -update and review the diff.
func TestShopGolden(t *testing.T) {
	res, err := Render(loadSpec(t, "../../examples/shop/nubo.yaml"), goldenOptions)
	if err != nil {
		t.Fatal(err)
	}
	files, err := Files(res.Objects)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join("testdata", "shop")
	if *update {
		if err := WriteDir(dir, res.Objects); err != nil {
			t.Fatal(err)
		}
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatalf("%v (create the golden files with -update)", err)
	}
	for _, e := range entries {
		if _, ok := files[e.Name()]; !ok {
			t.Errorf("golden file %s is no longer rendered", e.Name())
		}
	}
	for name, got := range files {
		want, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Errorf("%s: %v (rewrite the golden files with -update)", name, err)
			continue
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s differs from the golden file; first difference:\n%s\n(rewrite with -update if the change is meant)", name, firstDifference(string(want), string(got)))
		}
	}
}

// firstDifference shows the first differing line of two texts.
func firstDifference(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	for i := 0; i < max(len(w), len(g)); i++ {
		var wl, gl string
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if wl != gl {
			return "line " + strconv.Itoa(i+1) + ":\n- " + wl + "\n+ " + gl
		}
	}
	return "(same lines)"
}

// TestRenderIsDeterministic renders each spec many times: maps are walked
// in many orders, the bytes must not change.
func TestRenderIsDeterministic(t *testing.T) {
	for _, file := range []string{"../../examples/shop/nubo.yaml", "../spec/testdata/nubo.reference.yaml"} {
		var first []byte
		for i := range 20 {
			res, err := Render(loadSpec(t, file), goldenOptions)
			if err != nil {
				t.Fatal(err)
			}
			var buf bytes.Buffer
			if err := WriteYAML(&buf, res.Objects); err != nil {
				t.Fatal(err)
			}
			if i == 0 {
				first = buf.Bytes()
			} else if !bytes.Equal(first, buf.Bytes()) {
				t.Fatalf("%s: rendering %d differs from the first:\n%s", file, i, firstDifference(string(first), buf.String()))
			}
		}
	}
}

// TestEverySectionRenders checks that each section of the reference
// becomes the objects DESIGN.md's table names.
func TestEverySectionRenders(t *testing.T) {
	res, err := Render(loadSpec(t, "../spec/testdata/nubo.reference.yaml"), goldenOptions)
	if err != nil {
		t.Fatal(err)
	}
	has := map[string]bool{}
	for _, o := range res.Objects {
		has[o.GetKind()+"/"+o.GetName()] = true
		if o.GetLabels()[LabelManagedBy] != ManagedBy || o.GetLabels()[LabelPartOf] != "shop" || o.GetLabels()[LabelName] == "" {
			t.Errorf("%s: labels %v lack the standard ones", ObjectName(o), o.GetLabels())
		}
		if o.GetKind() != "Namespace" && o.GetNamespace() != "production" {
			t.Errorf("%s: namespace %q, want production", ObjectName(o), o.GetNamespace())
		}
	}
	for _, want := range []string{
		"Namespace/production",
		"ConfigMap/users-config", "Secret/users-db", "Secret/api-keys",
		"Deployment/users", "Service/users", "HorizontalPodAutoscaler/users", "PodDisruptionBudget/users", "ServiceAccount/users",
		"Deployment/users-v2", "Deployment/orders",
		"PeerAuthentication/default", "VirtualService/users", "DestinationRule/users", "AuthorizationPolicy/only-orders-reads-users",
		"Ingress/public",
		"Cluster/users-db", "ScheduledBackup/users-db", "NetworkPolicy/users-db", "StatefulSet/cache", "Service/cache",
		"Secret/users-db-role-users-rw", "Secret/users-db-role-reporting",
		"Service/user-processor", "Service/send-welcome", "NetworkPolicy/user-processor",
		"Stream/queue-user-events", "Consumer/queue-user-events", "Stream/topic-user-notifications", "Stream/events", "Consumer/events-rule-welcome-email",
		"Stream/eventstore", "KeyValue/eventstore-checkpoints", "KeyValue/eventstore-snapshots",
		"ConfigMap/nubo-spec", "ConfigMap/nubo-event-schemas",
		"Deployment/nubo-gateway", "Service/nubo-gateway", "Deployment/nubo-events", "Deployment/nubo-eventstore",
		"PodMonitor/users", "PodMonitor/users-db", "PrometheusRule/alerts", "PrometheusRule/database-users-db", "PrometheusRule/slo-users-availability",
		"AlertmanagerConfig/shop", "ConfigMap/grafana-dashboard-overview",
	} {
		if !has[want] {
			t.Errorf("no %s rendered", want)
		}
	}
}

// TestSecretsHaveNoValuesInRender makes sure no value of a secret reaches
// the rendering, however the environment is set, while deploy's rendering
// carries them.
func TestSecretsHaveNoValuesInRender(t *testing.T) {
	app := loadSpec(t, "../../examples/shop/nubo.yaml")
	const marker = "s3cr3t-marker-value"
	getenv := func(string) string { return marker }
	res, err := Render(app, Options{Getenv: getenv})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := WriteYAML(&buf, res.Objects); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(buf.String(), marker) {
		t.Fatal("a value from the environment reached the rendering")
	}
	vals := secrets.Values{"payments": {"PAYMENTS_API_KEY": secrets.NewValue(marker)}}
	for name, s := range app.Secrets {
		if name == "payments" {
			continue
		}
		vals[name] = map[string]secrets.Value{}
		for _, k := range s.Keys {
			vals[name][k] = secrets.NewValue("x")
		}
	}
	res, err = Render(app, Options{Secrets: vals})
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, o := range res.Objects {
		if o.GetKind() == "Secret" && o.GetName() == "payments" {
			v, _, _ := unstructured.NestedString(o.Object, "data", "PAYMENTS_API_KEY")
			found = v != ""
		}
	}
	if !found {
		t.Fatal("deploy's rendering has no value for payments.PAYMENTS_API_KEY")
	}
}
