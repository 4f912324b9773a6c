package k8stest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/yaml"
)

// CRDsDir returns the folder of third-party CRDs: $NUBO_CRDS_DIR, else the
// first shared/crds found going up from the working directory (the tests
// of internal/k8s find ../../../shared/crds).
func CRDsDir() (string, error) {
	if d := os.Getenv("NUBO_CRDS_DIR"); d != "" {
		return d, nil
	}
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		c := filepath.Join(dir, "shared", "crds")
		if fi, err := os.Stat(c); err == nil && fi.IsDir() {
			return c, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no shared/crds folder above the working directory: set NUBO_CRDS_DIR")
		}
		dir = parent
	}
}

var crdResource = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}

// ReadCRDs reads every CustomResourceDefinition in the YAML files under dir.
func ReadCRDs(dir string) ([]*unstructured.Unstructured, error) {
	var out []*unstructured.Unstructured
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".yaml") {
			return err
		}
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		dec := utilyaml.NewYAMLOrJSONDecoder(f, 1<<20)
		for {
			var obj map[string]any
			if err := dec.Decode(&obj); errors.Is(err, io.EOF) {
				break
			} else if err != nil {
				return fmt.Errorf("%s: %w", path, err)
			}
			if obj == nil || obj["kind"] != "CustomResourceDefinition" {
				continue
			}
			out = append(out, &unstructured.Unstructured{Object: obj})
		}
		return nil
	})
	return out, err
}

// InstallCRDs applies every CRD under dir and waits until each is
// established.
func InstallCRDs(ctx context.Context, cfg *rest.Config, dir string) error {
	crds, err := ReadCRDs(dir)
	if err != nil {
		return err
	}
	if len(crds) == 0 {
		return fmt.Errorf("no CustomResourceDefinition under %s", dir)
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return err
	}
	ri := dyn.Resource(crdResource)
	for _, c := range crds {
		data, err := yaml.Marshal(c.Object)
		if err != nil {
			return err
		}
		data, err = yaml.YAMLToJSON(data)
		if err != nil {
			return err
		}
		if _, err := ri.Patch(ctx, c.GetName(), types.ApplyPatchType, data, metav1.PatchOptions{FieldManager: "nubo-test", Force: ptr(true)}); err != nil {
			return fmt.Errorf("install CRD %s: %w", c.GetName(), err)
		}
	}
	for _, c := range crds {
		name := c.GetName()
		if err := poll(ctx, 60*time.Second, func() error {
			got, err := ri.Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return err
			}
			conds, _, _ := unstructured.NestedSlice(got.Object, "status", "conditions")
			for _, cond := range conds {
				if m, ok := cond.(map[string]any); ok && m["type"] == "Established" && m["status"] == "True" {
					return nil
				}
			}
			return fmt.Errorf("CRD %s is not established", name)
		}); err != nil {
			return err
		}
	}
	return nil
}
