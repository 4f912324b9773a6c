package knative

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/runtime"
	"knative.dev/pkg/apis"
	servingv1 "knative.dev/serving/pkg/apis/serving/v1"

	"github.com/nubo-dev/nubo/internal/k8s"
	"github.com/nubo-dev/nubo/internal/spec"
)

// specs are the files whose functions are rendered: the example, the
// reference, which uses every function field, and a function with the
// longest name nubo accepts. All are rendered with functions as Knative
// Services whatever they say.
func specs(t *testing.T) []string {
	long := filepath.Join(t.TempDir(), "long-names.yaml")
	doc := "name: " + strings.Repeat("a", 63) + "\nfunctions:\n  " + strings.Repeat("f", 63) +
		": {run: x, image: fn:1, env: {A: b}, scaling: {min: 1, max: 3}}\n"
	if err := os.WriteFile(long, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	return []string{
		"../../examples/shop/nubo.yaml",
		"../../internal/spec/testdata/nubo.reference.yaml",
		long,
	}
}

// TestKnativeAdmitsEveryService runs, on each rendered Knative Service,
// what Knative's webhook runs on a create: SetDefaults, then Validate. The
// context carries no config, so Knative's defaults apply, feature flags
// (such as kubernetes.podspec-fieldref) off, as on a fresh install.
func TestKnativeAdmitsEveryService(t *testing.T) {
	for _, file := range specs(t) {
		t.Run(filepath.Base(file), func(t *testing.T) {
			app, err := spec.Load(file)
			if err != nil {
				t.Fatalf("load %s: %v", file, err)
			}
			app.Kubernetes.Functions = "knative"
			res, err := k8s.Render(app, k8s.Options{Image: "ghcr.io/nubo-dev/nubo:v0.0.0-test"})
			if err != nil {
				t.Fatalf("render %s: %v", file, err)
			}
			n := 0
			for _, obj := range res.Objects {
				if obj.GetAPIVersion() != "serving.knative.dev/v1" || obj.GetKind() != "Service" {
					continue
				}
				n++
				var ksvc servingv1.Service
				if err := runtime.DefaultUnstructuredConverter.FromUnstructuredWithValidation(obj.Object, &ksvc, true); err != nil {
					t.Errorf("Service %s: not a Knative Service: %v", obj.GetName(), err)
					continue
				}
				ctx := apis.WithinCreate(context.Background())
				ksvc.SetDefaults(ctx)
				// The webhook refuses on errors and passes warnings on to
				// the client; nubo's render does not set a securityContext,
				// which Knative warns about.
				ferr := ksvc.Validate(ctx)
				if errs := ferr.Filter(apis.ErrorLevel); errs != nil {
					t.Errorf("Service %s: Knative refuses it: %v", obj.GetName(), errs)
				}
				if warnings := ferr.Filter(apis.WarningLevel); warnings != nil {
					t.Logf("Service %s: Knative warns: %v", obj.GetName(), warnings)
				}
			}
			if n == 0 {
				t.Fatalf("%s rendered no Knative Service", file)
			}
			t.Logf("%s: %d Knative Services checked", file, n)
		})
	}
}
