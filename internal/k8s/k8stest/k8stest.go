// Package k8stest runs a real Kubernetes control plane on loopback for
// tests: etcd and kube-apiserver, and on request kube-controller-manager,
// kube-scheduler and kwok with one fake node, so that Deployments get pods
// that run. The binaries come from scripts/k8s-control-plane, which builds
// them from tools/k8s into a folder keyed on that module's go.sum; tests
// skip, saying how to build them, when they are absent.
//
// Nothing here is faked: the apiserver validates objects with its own
// schemas and the CRDs' (installed from the projects' unmodified files),
// and the controllers are Kubernetes'.
package k8stest

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	_ "embed"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
)

//go:embed kwok-stages.yaml
var kwokStages []byte

// The binaries of the control plane: always, and for Options.Workloads.
var (
	apiBinaries      = []string{"etcd", "kube-apiserver"}
	workloadBinaries = []string{"kube-controller-manager", "kube-scheduler", "kwok"}
)

// needed lists the binaries opts needs.
func (opts Options) needed() []string {
	if opts.Workloads {
		return append(append([]string(nil), apiBinaries...), workloadBinaries...)
	}
	return apiBinaries
}

// token is the bearer token of the tests' user, in system:masters.
const token = "nubo-test-token"

// FakeNode is the name of the node kwok runs pods on.
const FakeNode = "kwok-node-0"

// Options choose what runs besides etcd and the apiserver.
type Options struct {
	// Workloads adds kube-controller-manager, kube-scheduler and kwok with a
	// fake node: Deployments' pods are scheduled and run.
	Workloads bool
	// CRDs installs every CRD under CRDsDir.
	CRDs bool
}

// ControlPlane is a running control plane.
type ControlPlane struct {
	// Config reaches the apiserver as a member of system:masters.
	Config *rest.Config
	// Kubeconfig is a kubeconfig file with that access, context "nubo-test".
	Kubeconfig string

	dir   string
	procs []*process
}

type process struct {
	name string
	cmd  *exec.Cmd
	done chan struct{}
	log  string
}

// moduleRoot finds the folder of nubo's go.mod above the working directory.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if data, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil && bytes.Contains(data, []byte("module github.com/nubo-dev/nubo\n")) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod of github.com/nubo-dev/nubo above the working directory")
		}
		dir = parent
	}
}

// BinDir returns the folder holding the control plane's binaries, the way
// scripts/k8s-control-plane names it: $NUBO_K8S_BIN, else
// $NUBO_CACHE (default $XDG_CACHE_HOME/nubo or ~/.cache/nubo) /k8s-<first
// 12 hex digits of tools/k8s/go.sum's SHA-256>. It reports an error saying
// how to build them when one of the binaries opts needs is missing.
func BinDir(opts Options) (string, error) {
	dir := os.Getenv("NUBO_K8S_BIN")
	if dir == "" {
		root, err := moduleRoot()
		if err != nil {
			return "", err
		}
		sum, err := os.ReadFile(filepath.Join(root, "tools", "k8s", "go.sum"))
		if err != nil {
			return "", err
		}
		h := sha256.Sum256(sum)
		cache := os.Getenv("NUBO_CACHE")
		if cache == "" {
			base := os.Getenv("XDG_CACHE_HOME")
			if base == "" {
				home, err := os.UserHomeDir()
				if err != nil {
					return "", err
				}
				base = filepath.Join(home, ".cache")
			}
			cache = filepath.Join(base, "nubo")
		}
		dir = filepath.Join(cache, "k8s-"+hex.EncodeToString(h[:])[:12])
	}
	for _, b := range opts.needed() {
		if _, err := os.Stat(filepath.Join(dir, b)); err != nil {
			return "", fmt.Errorf("the Kubernetes control plane is not built (%s missing): run scripts/k8s-control-plane (make test does) or set NUBO_K8S_BIN", filepath.Join(dir, b))
		}
	}
	return dir, nil
}

// Missing skips t for a control plane or CRDs that are not there, or fails
// it under CI=true, where that is a missing build step (make test builds
// the control plane first).
func Missing(t testing.TB, err error) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatal(err)
	}
	t.Skip(err)
}

// Start starts a control plane for one test and stops it when the test
// ends. The test is skipped, with the reason, when the binaries or the
// CRDs are not there; under CI=true it fails instead, since there a
// missing control plane is a missing build step.
func Start(t testing.TB, opts Options) *ControlPlane {
	t.Helper()
	if _, err := BinDir(opts); err != nil {
		Missing(t, err)
	}
	if opts.CRDs {
		if _, err := CRDsDir(); err != nil {
			Missing(t, err)
		}
	}
	cp, err := New(context.Background(), opts)
	if err != nil {
		t.Fatalf("start the control plane: %v", err)
	}
	t.Cleanup(cp.Stop)
	return cp
}

// New starts a control plane; Stop stops it. Its processes die with the
// test binary.
func New(ctx context.Context, opts Options) (cp *ControlPlane, err error) {
	bin, err := BinDir(opts)
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "nubo-k8s-")
	if err != nil {
		return nil, err
	}
	cp = &ControlPlane{dir: dir}
	defer func() {
		if err != nil {
			err = fmt.Errorf("%w%s", err, cp.logTails())
			cp.Stop()
		}
	}()
	ports, err := freePorts(3)
	if err != nil {
		return nil, err
	}
	etcdURL := fmt.Sprintf("http://127.0.0.1:%d", ports[0])
	peerURL := fmt.Sprintf("http://127.0.0.1:%d", ports[1])
	if err := cp.run(bin, "etcd",
		"--name=default",
		"--data-dir="+filepath.Join(dir, "etcd"),
		"--listen-client-urls="+etcdURL, "--advertise-client-urls="+etcdURL,
		"--listen-peer-urls="+peerURL, "--initial-advertise-peer-urls="+peerURL,
		"--initial-cluster=default="+peerURL,
		"--unsafe-no-fsync", "--log-level=error",
	); err != nil {
		return nil, err
	}

	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	keyFile := filepath.Join(dir, "sa.key")
	pubFile := filepath.Join(dir, "sa.pub")
	pub, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}), 0o600); err != nil {
		return nil, err
	}
	if err := os.WriteFile(pubFile, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub}), 0o600); err != nil {
		return nil, err
	}
	tokenFile := filepath.Join(dir, "tokens.csv")
	if err := os.WriteFile(tokenFile, []byte(token+",nubo-test,nubo-test,system:masters\n"), 0o600); err != nil {
		return nil, err
	}
	server := fmt.Sprintf("https://127.0.0.1:%d", ports[2])
	if err := cp.run(bin, "kube-apiserver",
		"--bind-address=127.0.0.1", "--advertise-address=127.0.0.1",
		fmt.Sprintf("--secure-port=%d", ports[2]),
		// Without it 1.37 exits: there is no node network to reconcile the
		// kubernetes Service's endpoints on.
		"--endpoint-reconciler-type=none",
		"--etcd-servers="+etcdURL,
		"--cert-dir="+filepath.Join(dir, "certs"),
		"--token-auth-file="+tokenFile,
		"--authorization-mode=Node,RBAC",
		"--service-account-key-file="+pubFile,
		"--service-account-signing-key-file="+keyFile,
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-cluster-ip-range=10.96.0.0/16",
		"--enable-priority-and-fairness=false",
		"--v=0",
	); err != nil {
		return nil, err
	}
	cp.Config = &rest.Config{
		Host:            server,
		BearerToken:     token,
		TLSClientConfig: rest.TLSClientConfig{Insecure: true},
		QPS:             100,
		Burst:           200,
	}
	cp.Kubeconfig = filepath.Join(dir, "kubeconfig")
	if err := os.WriteFile(cp.Kubeconfig, []byte(kubeconfig(server)), 0o600); err != nil {
		return nil, err
	}
	if err := cp.waitReady(ctx, server); err != nil {
		return nil, err
	}
	if opts.CRDs {
		crds, err := CRDsDir()
		if err != nil {
			return nil, err
		}
		if err := InstallCRDs(ctx, cp.Config, crds); err != nil {
			return nil, err
		}
	}
	if opts.Workloads {
		if err := cp.startWorkloads(ctx, bin, keyFile); err != nil {
			return nil, err
		}
	}
	return cp, nil
}

func kubeconfig(server string) string {
	return fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: nubo-test
  cluster:
    server: %s
    insecure-skip-tls-verify: true
users:
- name: nubo-test
  user:
    token: %s
contexts:
- name: nubo-test
  context: {cluster: nubo-test, user: nubo-test}
current-context: nubo-test
`, server, token)
}

// startWorkloads starts the controllers, the scheduler and kwok, and adds
// the fake node kwok manages.
func (cp *ControlPlane) startWorkloads(ctx context.Context, bin, keyFile string) error {
	if err := cp.run(bin, "kube-controller-manager",
		"--kubeconfig="+cp.Kubeconfig,
		"--leader-elect=false",
		"--service-account-private-key-file="+keyFile,
		"--use-service-account-credentials=false",
		"--bind-address=127.0.0.1", "--secure-port=0",
		"--v=0",
	); err != nil {
		return err
	}
	if err := cp.run(bin, "kube-scheduler",
		"--kubeconfig="+cp.Kubeconfig,
		"--leader-elect=false",
		"--bind-address=127.0.0.1", "--secure-port=0",
		"--v=0",
	); err != nil {
		return err
	}
	stages := filepath.Join(cp.dir, "kwok-stages.yaml")
	if err := os.WriteFile(stages, kwokStages, 0o600); err != nil {
		return err
	}
	if err := cp.run(bin, "kwok",
		"--kubeconfig="+cp.Kubeconfig,
		"--config="+stages,
		"--manage-all-nodes=false",
		"--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake",
		"--disregard-status-with-annotation-selector=kwok.x-k8s.io/status=custom",
		"--cidr=10.0.0.1/24",
		"--node-ip=10.0.0.1",
		"--server-address=127.0.0.1:0",
	); err != nil {
		return err
	}
	dyn, err := dynamic.NewForConfig(cp.Config)
	if err != nil {
		return err
	}
	node := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "v1",
		"kind":       "Node",
		"metadata": map[string]any{
			"name":        FakeNode,
			"annotations": map[string]any{"kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0"},
			"labels":      map[string]any{"type": "kwok", "kubernetes.io/hostname": FakeNode, "kubernetes.io/os": "linux"},
		},
	}}
	nodes := dyn.Resource(schema.GroupVersionResource{Version: "v1", Resource: "nodes"})
	if _, err := nodes.Create(ctx, node, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("create the fake node: %w", err)
	}
	return poll(ctx, 60*time.Second, func() error {
		if err := cp.exited(); err != nil {
			return err
		}
		n, err := nodes.Get(ctx, FakeNode, metav1.GetOptions{})
		if err != nil {
			return err
		}
		conds, _, _ := unstructured.NestedSlice(n.Object, "status", "conditions")
		for _, c := range conds {
			if m, ok := c.(map[string]any); ok && m["type"] == "Ready" && m["status"] == "True" {
				return nil
			}
		}
		return errors.New("the fake node is not Ready: kwok has not taken it")
	})
}

// run starts one binary of the control plane, its output in a log file.
func (cp *ControlPlane) run(bin, name string, args ...string) error {
	logFile := filepath.Join(cp.dir, name+".log")
	f, err := os.Create(logFile)
	if err != nil {
		return err
	}
	cmd := exec.Command(filepath.Join(bin, name), args...)
	cmd.Dir = cp.dir
	var out io.Writer = f
	if os.Getenv("NUBO_TEST_LOG") != "" {
		out = io.MultiWriter(f, os.Stderr)
	}
	cmd.Stdout, cmd.Stderr = out, out
	// The processes die with the test binary, however it ends.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	if err := cmd.Start(); err != nil {
		f.Close()
		return fmt.Errorf("start %s: %w", name, err)
	}
	p := &process{name: name, cmd: cmd, done: make(chan struct{}), log: logFile}
	go func() {
		_ = cmd.Wait()
		f.Close()
		close(p.done)
	}()
	cp.procs = append(cp.procs, p)
	return nil
}

// waitReady waits until the apiserver answers /readyz, or a process of the
// control plane has exited.
func (cp *ControlPlane) waitReady(ctx context.Context, server string) error {
	client := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	return poll(ctx, 90*time.Second, func() error {
		if err := cp.exited(); err != nil {
			return err
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, server+"/readyz", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("readyz: %s: %s", resp.Status, body)
		}
		return nil
	})
}

var errExited = errors.New("exited early")

// exited reports a process of the control plane that has exited.
func (cp *ControlPlane) exited() error {
	for _, p := range cp.procs {
		select {
		case <-p.done:
			return fmt.Errorf("%s: %w", p.name, errExited)
		default:
		}
	}
	return nil
}

// poll calls cond until it returns nil, ctx ends, timeout passes, or cond's
// error wraps errExited.
func poll(ctx context.Context, timeout time.Duration, cond func() error) error {
	deadline := time.Now().Add(timeout)
	wait := 10 * time.Millisecond
	for {
		err := cond()
		if err == nil {
			return nil
		}
		if errors.Is(err, errExited) || time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
		wait = min(2*wait, 200*time.Millisecond)
	}
}

// Stop stops the processes (SIGTERM, then SIGKILL after 10s) in reverse
// order and removes their files. It is idempotent.
func (cp *ControlPlane) Stop() {
	if cp == nil {
		return
	}
	for i := len(cp.procs) - 1; i >= 0; i-- {
		p := cp.procs[i]
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	}
	cp.procs = nil
	if cp.dir != "" {
		os.RemoveAll(cp.dir)
		cp.dir = ""
	}
}

// logTails returns the end of each process's log, for a failed start.
func (cp *ControlPlane) logTails() string {
	var b strings.Builder
	for _, p := range cp.procs {
		data, _ := os.ReadFile(p.log)
		if len(data) > 2000 {
			data = data[len(data)-2000:]
		}
		if len(data) > 0 {
			fmt.Fprintf(&b, "\n--- %s log (end) ---\n%s", p.name, data)
		}
	}
	return b.String()
}

// freePorts returns n ports free on 127.0.0.1 a moment ago.
func freePorts(n int) ([]int, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// CreateNamespace creates a namespace, for a test that wants its own.
func CreateNamespace(ctx context.Context, cfg *rest.Config, name string) error {
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return err
	}
	ns := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "v1", "kind": "Namespace", "metadata": map[string]any{"name": name}}}
	_, err = dyn.Resource(schema.GroupVersionResource{Version: "v1", Resource: "namespaces"}).Create(ctx, ns, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		return nil
	}
	return err
}

func ptr[T any](v T) *T { return &v }
