package cli

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"

	"github.com/nubo-dev/nubo/internal/audit"
	"github.com/nubo-dev/nubo/internal/k8s"
	"github.com/nubo-dev/nubo/internal/k8s/k8stest"
	"github.com/nubo-dev/nubo/internal/nubotest"
	"github.com/nubo-dev/nubo/internal/spec"
)

// copyShop copies examples/shop (without built programs and local state)
// into a folder of the test's, with an include of extra.yaml, a service of
// its own, when extra is set.
func copyShop(t *testing.T, dir string, extra bool) string {
	t.Helper()
	const src = "../../examples/shop"
	err := filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		if d.IsDir() {
			if rel == "bin" || rel == ".nubo" {
				return filepath.SkipDir
			}
			return os.MkdirAll(filepath.Join(dir, rel), 0o755)
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if rel == "nubo.yaml" && extra {
			data = []byte(strings.Replace(string(data), "include: [observability.yaml]", "include: [observability.yaml, extra.yaml]", 1))
			if !strings.Contains(string(data), "extra.yaml") {
				return errors.New("examples/shop/nubo.yaml no longer says include: [observability.yaml]; change copyShop to add extra.yaml")
			}
		}
		return os.WriteFile(filepath.Join(dir, rel), data, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	extraSpec := "services:\n  extra:\n    image: ghcr.io/nubo-dev/extra:1\n    port: 8080\n"
	if err := os.WriteFile(filepath.Join(dir, "extra.yaml"), []byte(extraSpec), 0o644); err != nil {
		t.Fatal(err)
	}
	return filepath.Join(dir, "nubo.yaml")
}

// TestDeployShop deploys examples/shop to a control plane whose fake node
// runs pods: deploy --wait returns once the Deployments' pods run, diff then
// sees nothing to do, and deploy --prune removes a service deleted from the
// spec.
func TestDeployShop(t *testing.T) {
	cp := k8stest.Start(t, k8stest.Options{Workloads: true, CRDs: true})
	t.Setenv("NUBO_AGE_IDENTITY", filepath.Join(t.TempDir(), "identity.txt"))
	dir := t.TempDir()
	file := copyShop(t, dir, true)
	kube := []string{"--kubeconfig", cp.Kubeconfig, "--image", "ghcr.io/nubo-dev/nubo:test"}

	r := runInProcess(t, append([]string{"deploy", "-f", file, "--wait", "--timeout", "2m"}, kube...)...)
	t.Log(r.stdout)
	if r.code != 0 {
		t.Fatalf("deploy --wait: %s", r)
	}
	for _, want := range []string{
		"deployment.apps/catalog created", "deployment.apps/extra created", "secret/payments created",
		"virtualservice.networking.istio.io/catalog created", "deployment.apps/users 2/2 available", "ready in",
		"not waited for: Knative Service shop/order-processor", // Knative is not installed: nothing reports its status
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("deploy output lacks %q:\n%s", want, r.stdout)
		}
	}

	// Every Deployment's pods run on the fake node.
	dyn, err := dynamic.NewForConfig(cp.Config)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	deployments, err := dyn.Resource(schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"}).Namespace("shop").List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(deployments.Items) < 7 {
		t.Fatalf("%d Deployments in shop; want the services' and the components'", len(deployments.Items))
	}
	// Each carries the deploy's record in the audit trail, who and when.
	app, err := spec.Load(file)
	if err != nil {
		t.Fatal(err)
	}
	recs, err := audit.Open(app.StatePath()).Read(audit.Query{Action: "deploy"})
	if err != nil || len(recs) != 2 || recs[0].Result != audit.Started || recs[1].Result != audit.OK {
		t.Fatalf("deploy records = %+v, %v; want started, then ok", recs, err)
	}
	for _, d := range deployments.Items {
		a := d.GetAnnotations()
		if want := fmt.Sprintf("%d:%s", recs[0].Seq, recs[0].Hash); a[k8s.AnnotationAudit] != want || a[k8s.AnnotationDeployedBy] != recs[0].Actor {
			t.Errorf("Deployment %s: annotations %v, want %s=%s and who", d.GetName(), a, k8s.AnnotationAudit, want)
		}
	}
	pods := dyn.Resource(schema.GroupVersionResource{Version: "v1", Resource: "pods"}).Namespace("shop")
	for _, d := range deployments.Items {
		name := d.GetName()
		want, _, _ := unstructured.NestedInt64(d.Object, "spec", "replicas")
		list, err := pods.List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/name=" + name})
		if err != nil {
			t.Fatal(err)
		}
		running := 0
		for _, p := range list.Items {
			phase, _, _ := unstructured.NestedString(p.Object, "status", "phase")
			node, _, _ := unstructured.NestedString(p.Object, "spec", "nodeName")
			if phase == "Running" && node == k8stest.FakeNode && p.GetDeletionTimestamp() == nil {
				running++
			}
		}
		if int64(running) < want {
			t.Errorf("Deployment %s: %d pods running on %s, want %d", name, running, k8stest.FakeNode, want)
		}
	}

	// The secret's value in the cluster is the one nubo up would use, from
	// the example's dotenv file.
	sec, err := dyn.Resource(schema.GroupVersionResource{Version: "v1", Resource: "secrets"}).Namespace("shop").Get(ctx, "partner-keys", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if v, _, _ := unstructured.NestedString(sec.Object, "data", "PARTNER_ACME"); v == "" {
		t.Error("Secret partner-keys has no PARTNER_ACME")
	}

	// Without extra.yaml, diff lists the service's objects and deploy
	// --prune deletes them.
	file = copyShop(t, dir, false)
	r = runInProcess(t, append([]string{"diff", "-f", file}, kube...)...)
	if r.code != 0 || !strings.Contains(r.stdout, "- Deployment shop/extra no longer rendered") || !strings.Contains(r.stdout, "0 to create") {
		t.Errorf("diff without extra: %s", r)
	}
	r = runInProcess(t, append([]string{"deploy", "-f", file, "--prune"}, kube...)...)
	if r.code != 0 || !strings.Contains(r.stdout, "deployment.apps/extra deleted") || !strings.Contains(r.stdout, "service/extra deleted") {
		t.Fatalf("deploy --prune: %s", r)
	}
	nubotest.WaitFor(t, time.Minute, func() error {
		list, err := pods.List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/name=extra"})
		if err != nil {
			return err
		}
		if n := len(list.Items); n > 0 {
			return fmt.Errorf("%d pods of extra left", n)
		}
		return nil
	})
	if _, err := dyn.Resource(schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"}).Namespace("shop").Get(ctx, "users", metav1.GetOptions{}); err != nil {
		t.Errorf("Deployment users after the prune: %v", err)
	}
	r = runInProcess(t, append([]string{"diff", "-f", file, "--exit-code"}, kube...)...)
	if r.code != 0 {
		t.Errorf("diff --exit-code after deploy --prune: %s", r)
	}
}
