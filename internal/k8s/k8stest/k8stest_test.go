package k8stest

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
)

// TestPodsRunOnTheFakeNode checks the whole chain a deploy test relies on:
// the controllers make a Deployment's pod, the scheduler binds it to the
// fake node, and kwok runs it.
func TestPodsRunOnTheFakeNode(t *testing.T) {
	cp := Start(t, Options{Workloads: true})
	ctx := context.Background()
	dyn, err := dynamic.NewForConfig(cp.Config)
	if err != nil {
		t.Fatal(err)
	}
	if err := CreateNamespace(ctx, cp.Config, "kwok"); err != nil {
		t.Fatal(err)
	}
	dep := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "apps/v1", "kind": "Deployment",
		"metadata": map[string]any{"name": "web", "namespace": "kwok"},
		"spec": map[string]any{
			"replicas": int64(2),
			"selector": map[string]any{"matchLabels": map[string]any{"app": "web"}},
			"template": map[string]any{
				"metadata": map[string]any{"labels": map[string]any{"app": "web"}},
				"spec":     map[string]any{"containers": []any{map[string]any{"name": "web", "image": "web:1"}}},
			},
		},
	}}
	deployments := dyn.Resource(schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"}).Namespace("kwok")
	if _, err := deployments.Create(ctx, dep, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	pods := dyn.Resource(schema.GroupVersionResource{Version: "v1", Resource: "pods"}).Namespace("kwok")
	err = poll(ctx, 60*time.Second, func() error {
		list, err := pods.List(ctx, metav1.ListOptions{LabelSelector: "app=web"})
		if err != nil {
			return err
		}
		running := 0
		for _, p := range list.Items {
			phase, _, _ := unstructured.NestedString(p.Object, "status", "phase")
			node, _, _ := unstructured.NestedString(p.Object, "spec", "nodeName")
			if phase == "Running" && node == FakeNode {
				running++
			}
		}
		if running != 2 {
			return fmt.Errorf("%d of %d pods running on %s", running, len(list.Items), FakeNode)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestBinDirSaysHowToBuild(t *testing.T) {
	t.Setenv("NUBO_K8S_BIN", t.TempDir())
	_, err := BinDir(Options{})
	if err == nil || !strings.Contains(err.Error(), "scripts/k8s-control-plane") {
		t.Fatalf("BinDir of an empty folder: %v; want an error naming scripts/k8s-control-plane", err)
	}
}
