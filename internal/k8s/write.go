package k8s

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sync"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"
)

// WriteYAML writes objects as one YAML stream, documents separated by ---.
// Keys are sorted, so equal objects give equal bytes. Encoding YAML is most
// of the time a rendering takes, so objects are encoded on every core, and
// written in order.
func WriteYAML(w io.Writer, objs []*unstructured.Unstructured) error {
	docs := make([][]byte, len(objs))
	errs := make([]error, len(objs))
	workers := min(runtime.GOMAXPROCS(0), max(len(objs)/64, 1))
	var wg sync.WaitGroup
	for n := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := n; i < len(objs); i += workers {
				docs[i], errs[i] = yaml.Marshal(objs[i].Object)
			}
		}()
	}
	wg.Wait()
	var buf bytes.Buffer
	for i, o := range objs {
		if errs[i] != nil {
			return fmt.Errorf("%s: %w", ObjectName(o), errs[i])
		}
		if i > 0 {
			buf.WriteString("---\n")
		}
		buf.Write(docs[i])
	}
	_, err := w.Write(buf.Bytes())
	return err
}

// Files groups objects into the files of `nubo render -o DIR`: one per
// group of kinds, named so that `kubectl apply -f DIR` takes them in apply
// order. The map is file name -> content.
func Files(objs []*unstructured.Unstructured) (map[string][]byte, error) {
	groups := map[string][]*unstructured.Unstructured{}
	var order []string
	for _, o := range objs {
		i := kindIndex(o.GetAPIVersion(), o.GetKind())
		if i < 0 {
			return nil, fmt.Errorf("%s %s: not a kind nubo renders", o.GetAPIVersion(), o.GetKind())
		}
		f := kinds[i].file
		if _, ok := groups[f]; !ok {
			order = append(order, f)
		}
		groups[f] = append(groups[f], o)
	}
	out := make(map[string][]byte, len(groups))
	for _, f := range order {
		var buf bytes.Buffer
		if err := WriteYAML(&buf, groups[f]); err != nil {
			return nil, err
		}
		out[f] = buf.Bytes()
	}
	return out, nil
}

// WriteDir writes the files of objs into dir, creating it, and removes the
// files of kind groups that no longer have objects, so that the folder
// always holds exactly one rendering.
func WriteDir(dir string, objs []*unstructured.Unstructured) error {
	files, err := Files(objs)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for _, k := range kinds {
		if _, ok := files[k.file]; !ok {
			if err := os.Remove(filepath.Join(dir, k.file)); err != nil && !os.IsNotExist(err) {
				return err
			}
		}
	}
	for _, name := range sortedKeys(files) {
		if err := os.WriteFile(filepath.Join(dir, name), files[name], 0o644); err != nil {
			return err
		}
	}
	return nil
}
