package cli

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/nubo-dev/nubo/internal/k8s"
)

const dashboardsLong = `Dashboards works with the spec's observability.dashboards: nubo up's web
console draws them, and nubo render puts them into ConfigMaps for Grafana.`

const dashboardsExportLong = `Export prints a dashboard of the spec in Grafana's JSON model, exactly as
nubo render puts it into the ConfigMap Grafana's dashboard sidecar loads:
import it into any Grafana with a Prometheus data source. With no NAME and
one dashboard in the spec, it prints that one; with several, name one, or
pass --all for a JSON object of every dashboard by name. It reads only the
spec file: nothing needs to run.`

func newDashboardsCmd(std stdio, g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "dashboards",
		Short: "Export the spec's dashboards as Grafana JSON",
		Long:  dashboardsLong,
		Args:  usageArgs(cobra.NoArgs),
	}
	var all bool
	export := &cobra.Command{
		Use:   "export [NAME]",
		Short: "Print a dashboard in Grafana's JSON model",
		Long:  dashboardsExportLong,
		Example: `  nubo dashboards export overview > overview.json
  nubo dashboards export --all`,
		Args: usageArgs(cobra.MaximumNArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			if all && len(args) > 0 {
				return usageErrorf("name a dashboard or pass --all, not both")
			}
			app, err := loadForKubernetes(std.err, g.file)
			if err != nil {
				return err
			}
			ds, err := k8s.GrafanaDashboards(app)
			if err != nil {
				return err
			}
			if len(ds) == 0 {
				return fmt.Errorf("%s has no dashboards (observability.dashboards)", g.file)
			}
			var names []string
			for _, d := range ds {
				names = append(names, d.Name)
			}
			switch {
			case all:
				byName := map[string]json.RawMessage{}
				for _, d := range ds {
					byName[d.Name] = d.JSON
				}
				out, err := json.MarshalIndent(byName, "", "  ")
				if err != nil {
					return err
				}
				_, err = fmt.Fprintf(std.out, "%s\n", out)
				return err
			case len(args) == 0 && len(ds) > 1:
				return usageErrorf("the spec has %d dashboards (%s): name one, or pass --all", len(ds), strings.Join(names, ", "))
			}
			want := ds[0].Name
			if len(args) == 1 {
				want = args[0]
			}
			for _, d := range ds {
				if d.Name == want {
					_, err = fmt.Fprintf(std.out, "%s\n", d.JSON)
					return err
				}
			}
			return fmt.Errorf("no dashboard %q in %s (dashboards: %s)", want, g.file, strings.Join(names, ", "))
		},
	}
	export.Flags().BoolVar(&all, "all", false, "print every dashboard, as a JSON object by name")
	cmd.AddCommand(export)
	return cmd
}
