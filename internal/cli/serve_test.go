package cli

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/nubo-dev/nubo/internal/broker/brokertest"
	"github.com/nubo-dev/nubo/internal/k8s"
	"github.com/nubo-dev/nubo/internal/nubotest"
	"github.com/nubo-dev/nubo/internal/spec"
)

// rendered is what `nubo render` makes of one of nubo's components: the
// container's arguments and environment, and the spec ConfigMap's files as
// the Deployment mounts them.
type rendered struct {
	args    []string
	env     map[string]string
	files   map[string]string // path under the mount -> content
	mount   string
	secrets []string // the secrets mounted under NUBO_SECRETS_DIR
}

func renderComponent(t *testing.T, app *spec.App, name string) rendered {
	t.Helper()
	res, err := k8s.Render(app, k8s.Options{Image: "nubo:test", NATSURL: "nats://nats:4222"})
	if err != nil {
		t.Fatal(err)
	}
	var dep appsv1.Deployment
	var cm corev1.ConfigMap
	for _, o := range res.Objects {
		switch {
		case o.GetKind() == "Deployment" && o.GetName() == name:
			if err := runtime.DefaultUnstructuredConverter.FromUnstructured(o.Object, &dep); err != nil {
				t.Fatal(err)
			}
		case o.GetKind() == "ConfigMap" && o.GetName() == "nubo-spec":
			if err := runtime.DefaultUnstructuredConverter.FromUnstructured(o.Object, &cm); err != nil {
				t.Fatal(err)
			}
		}
	}
	if dep.Name == "" || cm.Name == "" {
		t.Fatalf("render made no Deployment %s or no ConfigMap nubo-spec", name)
	}
	c := dep.Spec.Template.Spec.Containers[0]
	r := rendered{args: c.Args, env: map[string]string{}, files: map[string]string{}}
	for _, e := range c.Env {
		r.env[e.Name] = e.Value
	}
	for _, m := range c.VolumeMounts {
		if m.Name == "spec" {
			r.mount = m.MountPath
		}
	}
	for _, v := range dep.Spec.Template.Spec.Volumes {
		if v.Secret != nil {
			r.secrets = append(r.secrets, v.Secret.SecretName)
		}
		if v.ConfigMap == nil {
			continue
		}
		for _, it := range v.ConfigMap.Items {
			r.files[it.Path] = cm.Data[it.Key]
		}
	}
	// The probes and the ServiceMonitor call these; the test calls them too.
	if c.LivenessProbe.HTTPGet.Path != "/healthz" || c.ReadinessProbe.HTTPGet.Path != "/readyz" {
		t.Fatalf("the rendered probes changed: %s %s", c.LivenessProbe.HTTPGet.Path, c.ReadinessProbe.HTTPGet.Path)
	}
	return r
}

// served is a running `nubo serve` process.
type served struct {
	addr string
	cmd  *exec.Cmd
	mu   sync.Mutex
	logs strings.Builder
}

// startServe runs nubo with the rendered arguments and environment: the
// ConfigMap's files written where the mount would be (a temporary folder
// standing for it), the secrets as Kubernetes mounts them, the NATS URL of
// a real nats-server and a loopback port instead of the container's 8080.
func startServe(t *testing.T, r rendered, natsURL string, secrets map[string]map[string]string, extraEnv ...string) *served {
	t.Helper()
	dir := t.TempDir()
	specDir, secretsDir := filepath.Join(dir, "spec"), filepath.Join(dir, "secrets")
	for p, data := range r.files {
		full := filepath.Join(specDir, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range r.secrets {
		for key, val := range secrets[name] {
			if err := os.MkdirAll(filepath.Join(secretsDir, name), 0o700); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(secretsDir, name, key), []byte(val), 0o600); err != nil {
				t.Fatal(err)
			}
		}
	}
	args := make([]string, len(r.args))
	for i, a := range r.args {
		args[i] = strings.Replace(a, r.mount, specDir, 1)
	}
	env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir}
	for k, v := range r.env {
		switch k {
		case "NUBO_NATS_URL":
			v = natsURL
		case "NUBO_LISTEN":
			v = "127.0.0.1:0"
		case "NUBO_SECRETS_DIR":
			v = secretsDir
		}
		env = append(env, k+"="+v)
	}
	s := &served{cmd: exec.Command(nuboBin, args...)}
	s.cmd.Env = append(env, extraEnv...)
	stderr, err := s.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = s.cmd.Process.Kill()
		_ = s.cmd.Wait()
		if t.Failed() {
			t.Logf("nubo %s:\n%s", strings.Join(args, " "), s.log())
		}
	})
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			line := sc.Text()
			s.mu.Lock()
			s.logs.WriteString(line + "\n")
			s.mu.Unlock()
			var rec struct {
				Msg  string `json:"msg"`
				Addr string `json:"addr"`
			}
			if json.Unmarshal([]byte(line), &rec) == nil && rec.Msg == "serving" {
				addr <- rec.Addr
			}
		}
	}()
	select {
	case s.addr = <-addr:
	case <-time.After(30 * time.Second):
		t.Fatalf("nubo serve did not start:\n%s", s.log())
	}
	return s
}

func (s *served) log() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.logs.String()
}

func (s *served) get(t *testing.T, path string, header ...string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", "http://"+s.addr+path, nil)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// stop sends SIGTERM, as the kubelet does, and expects a clean exit.
func (s *served) stop(t *testing.T) {
	t.Helper()
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- s.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("nubo serve after SIGTERM: %v\n%s", err, s.log())
		}
	case <-time.After(30 * time.Second):
		t.Errorf("nubo serve did not stop on SIGTERM")
	}
}

// TestServeRenderedComponents renders examples/shop and runs its gateway
// and dispatcher Deployments' commands against a real nats-server: a
// request through the gateway reaches a backend standing for the catalog
// Service, an event through a rule reaches a subscriber standing for the
// send-welcome Knative Service, and the probes' and the ServiceMonitor's
// endpoints answer.
func TestServeRenderedComponents(t *testing.T) {
	ext := brokertest.StartExternal(t)
	app, err := spec.Load("../../examples/shop/nubo.yaml")
	if err != nil {
		t.Fatal(err)
	}

	catalog := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"path":%q,"from":"catalog"}`, r.URL.Path)
	}))
	defer catalog.Close()
	gw := startServe(t, renderComponent(t, app, "nubo-gateway"), ext.URL,
		map[string]map[string]string{"partner-keys": {"PARTNER_ACME": "acme-key"}, "staff-keys": {"STAFF_BACKOFFICE": "staff-key"}},
		"NUBO_SERVICE_CATALOG_URL="+catalog.URL)
	for _, p := range []string{"/healthz", "/readyz"} {
		if code, body := gw.get(t, p); code != 200 {
			t.Errorf("gateway %s: %d %s", p, code, body)
		}
	}
	if code, body := gw.get(t, "/prod/products"); code != 200 || !strings.Contains(body, `"path":"/products","from":"catalog"`) {
		t.Errorf("gateway GET /prod/products: %d %s", code, body)
	}
	if code, _ := gw.get(t, "/prod/partners/products"); code != http.StatusUnauthorized {
		t.Errorf("the partner route without its key: %d, want 401", code)
	}
	if code, body := gw.get(t, "/metrics"); code != 200 || !strings.Contains(body, "nubo_gateway_") {
		t.Errorf("gateway /metrics: %d, no nubo_gateway_ series", code)
	}

	received := make(chan map[string]any, 1)
	welcome := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var data map[string]any
		_ = json.NewDecoder(r.Body).Decode(&data)
		data["ce-type"] = r.Header.Get("Ce-Type")
		select {
		case received <- data:
		default:
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	defer welcome.Close()
	ev := startServe(t, renderComponent(t, app, "nubo-events"), ext.URL, nil, "NUBO_FUNCTION_SEND_WELCOME_URL="+welcome.URL)
	if code, body := ev.get(t, "/readyz"); code != 200 {
		t.Errorf("events /readyz: %d %s", code, body)
	}
	resp, err := http.Post("http://"+ev.addr+"/v1/events", "application/cloudevents+json", strings.NewReader(
		`{"specversion":"1.0","id":"u1","source":"users","type":"com.shop.user.created","datacontenttype":"application/json","data":{"id":"1","email":"ada@example.com","name":"Ada"}}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("publish on the bus: %d", resp.StatusCode)
	}
	select {
	case got := <-received:
		if got["email"] != "ada@example.com" || got["name"] != "Ada" || got["ce-type"] != "com.shop.user.created" {
			t.Errorf("send-welcome got %v, want the rule's transform of the event", got)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("the rule did not deliver to send-welcome:\n%s", ev.log())
	}
	nubotest.WaitFor(t, 10*time.Second, func() error {
		if code, body := ev.get(t, "/metrics"); code != 200 || !strings.Contains(body, "nubo_events_") {
			return fmt.Errorf("events /metrics: %d, no nubo_events_ series", code)
		}
		return nil
	})
	gw.stop(t)
	ev.stop(t)
}
