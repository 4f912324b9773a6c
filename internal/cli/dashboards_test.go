package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nubo-dev/nubo/internal/k8s"
	"github.com/nubo-dev/nubo/internal/spec"
)

// TestDashboardsExport prints the shop's dashboard offline and checks it is
// byte for byte what nubo render puts into the Grafana ConfigMap, plus the
// usage errors.
func TestDashboardsExport(t *testing.T) {
	const file = "../../examples/shop/nubo.yaml"
	app, err := spec.Load(file)
	if err != nil {
		t.Fatal(err)
	}
	ds, err := k8s.GrafanaDashboards(app)
	if err != nil || len(ds) == 0 {
		t.Fatalf("the shop's dashboards: %v %v", ds, err)
	}
	r := runInProcess(t, "dashboards", "export", ds[0].Name, "-f", file)
	if r.code != 0 || r.stdout != string(ds[0].JSON)+"\n" {
		t.Fatalf("dashboards export %s: %s", ds[0].Name, r)
	}
	var d struct {
		Title  string
		Panels []struct{ Type string }
	}
	if err := json.Unmarshal([]byte(r.stdout), &d); err != nil || d.Title == "" || len(d.Panels) == 0 {
		t.Errorf("not a Grafana dashboard: %v %+v", err, d)
	}
	r = runInProcess(t, "dashboards", "export", "--all", "-f", file)
	var all map[string]json.RawMessage
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &all) != nil || len(all) != len(ds) {
		t.Errorf("dashboards export --all: %s", r)
	}

	none := filepath.Join(t.TempDir(), "nubo.yaml")
	if err := os.WriteFile(none, []byte("name: small\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"dashboards", "export", "-f", none}, 1, "has no dashboards"},
		{[]string{"dashboards", "export", "nope", "-f", file}, 1, `no dashboard "nope"`},
		{[]string{"dashboards", "export", "x", "--all", "-f", file}, 2, "not both"},
		{[]string{"dashboards", "export", "a", "b", "-f", file}, 2, ""},
	} {
		r := runInProcess(t, c.args...)
		if r.code != c.code || !strings.Contains(r.stderr, c.want) {
			t.Errorf("%v: %s, want exit %d and %q", c.args, r, c.code, c.want)
		}
	}
}
