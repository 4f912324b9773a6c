package k8s

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nubo-dev/nubo/internal/spec"
)

// generatedSpec writes a spec of n services, each with probes, resources,
// env with references, a config map, and every third one autoscaled with
// traffic policies, and loads it.
func generatedSpec(tb testing.TB, n int) *spec.App {
	tb.Helper()
	var b strings.Builder
	b.WriteString("name: big\nconfig:\n  common: {LOG_LEVEL: info}\nsecrets:\n  api: {keys: [TOKEN]}\nservices:\n")
	for i := range n {
		fmt.Fprintf(&b, `  svc-%d:
    image: ghcr.io/acme/svc:%d
    port: 8080
    resources: {cpu: 100m, memory: 64Mi}
    env:
      NEXT_URL: ${services.svc-%d.url}
      TOKEN: ${secrets.api.TOKEN}
    envFrom: {config: [common]}
    health:
      liveness: {http: {path: /healthz}}
      readiness: {http: {path: /readyz}, period: 2s}
`, i, i, (i+1)%n)
		if i%3 == 0 {
			b.WriteString(`    scaling: {min: 2, max: 6, targetCPU: 70}
    traffic:
      loadBalancing: {algorithm: least_request}
      retry: {attempts: 2, perTryTimeout: 1s}
      timeout: 3s
`)
		}
	}
	file := filepath.Join(tb.TempDir(), "nubo.yaml")
	if err := os.WriteFile(file, []byte(b.String()), 0o644); err != nil {
		tb.Fatal(err)
	}
	app, err := spec.Load(file)
	if err != nil {
		tb.Fatal(err)
	}
	return app
}

// BenchmarkRender1000Services is the time `nubo render` spends on a spec of
// 1,000 services once it is loaded: building the objects, and writing them
// as YAML. The figure is in bench/README.md.
func BenchmarkRender1000Services(b *testing.B) {
	app := generatedSpec(b, 1000)
	b.Run("objects", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := Render(app, Options{}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("objects+yaml", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			res, err := Render(app, Options{})
			if err != nil {
				b.Fatal(err)
			}
			if err := WriteYAML(io.Discard, res.Objects); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// TestGeneratedSpecRenders keeps the benchmark's spec valid and its
// rendering complete.
func TestGeneratedSpecRenders(t *testing.T) {
	res, err := Render(generatedSpec(t, 30), Options{})
	if err != nil {
		t.Fatal(err)
	}
	deployments := 0
	for _, o := range res.Objects {
		if o.GetKind() == "Deployment" {
			deployments++
		}
	}
	if deployments != 30 {
		t.Errorf("%d Deployments for 30 services", deployments)
	}
}
