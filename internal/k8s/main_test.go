package k8s

import (
	"context"
	"os"
	"sync"
	"testing"

	"github.com/nubo-dev/nubo/internal/k8s/k8stest"
)

// apiserver is the control plane the tests of this package share: etcd and
// kube-apiserver with the third-party CRDs installed, started by the first
// test that needs it. Each test works in namespaces of its own.
var apiserver struct {
	once sync.Once
	cp   *k8stest.ControlPlane
	err  error
	skip error
}

func TestMain(m *testing.M) {
	code := m.Run()
	apiserver.cp.Stop()
	os.Exit(code)
}

// sharedControlPlane returns the shared control plane, skipping the test
// when the binaries or the CRDs are not there (failing it under CI=true).
func sharedControlPlane(t *testing.T) *k8stest.ControlPlane {
	t.Helper()
	apiserver.once.Do(func() {
		if _, err := k8stest.BinDir(k8stest.Options{}); err != nil {
			apiserver.skip = err
			return
		}
		if _, err := k8stest.CRDsDir(); err != nil {
			apiserver.skip = err
			return
		}
		apiserver.cp, apiserver.err = k8stest.New(context.Background(), k8stest.Options{CRDs: true})
	})
	if apiserver.skip != nil {
		k8stest.Missing(t, apiserver.skip)
	}
	if apiserver.err != nil {
		t.Fatalf("start the control plane: %v", apiserver.err)
	}
	return apiserver.cp
}
