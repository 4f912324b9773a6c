package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"sort"
	"text/tabwriter"

	"github.com/prometheus/common/model"
	"github.com/spf13/cobra"

	"github.com/nubo-dev/nubo/internal/rulegroups"
	"github.com/nubo-dev/nubo/internal/spec"
)

const costLong = `Cost prints what the running system costs at the spec's prices (the cost
section): per service (CPU and resident memory), per function (GB-seconds and
invocations) and for the API gateway (requests), as the cost per hour now, the
cost over the window (--since, default 24h, of what the engine recorded), and
the month projected from now (730 hours). The cost now comes from the
engine's nubo:cost_per_hour series, which nubo query and alert rules can use
too; the window's from the usage counters' increase over it.`

// hoursPerMonth is a month as cloud providers bill it.
const hoursPerMonth = 730

func newCostCmd(std stdio, g *globals) *cobra.Command {
	var addr, since, by, output string
	cmd := &cobra.Command{
		Use:   "cost",
		Short: "Print what the running system costs at the spec's prices",
		Long:  costLong,
		Args:  usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			window, err := spec.ParseDuration(since)
			if err != nil || window <= 0 {
				return usageErrorf("--since %q: want a duration such as 1h or 24h", since)
			}
			kinds := []string{"service", "function", "gateway"}
			switch by {
			case "":
			case "service", "function", "gateway":
				kinds = []string{by}
			default:
				return usageErrorf("--by %q: want service, function or gateway", by)
			}
			app, err := loadSpecFor(g.file, "read its prices", true)
			if err != nil {
				return err
			}
			if app.Cost == nil {
				return fmt.Errorf("%s has no cost section: give the prices (docs/spec.md#cost) to see costs", g.file)
			}
			currency := app.Cost.Currency
			if currency == "" {
				currency = "USD"
			}
			t, err := findEngine(g, addr)
			if err != nil {
				return err
			}
			c := newEngineClient(t)
			pastExpr := rulegroups.WindowCost(app, window)
			var rows []costRow
			for _, kind := range kinds {
				series := "nubo:cost_per_hour:" + kind
				now, err := costVector(cmd.Context(), c, series)
				if err != nil {
					return err
				}
				past, err := costVector(cmd.Context(), c, pastExpr[kind])
				if err != nil {
					return err
				}
				for name, v := range past {
					rows = append(rows, costRow{Kind: kind, Name: name, PerHour: now[name], Window: v, Month: now[name] * hoursPerMonth})
				}
				for name, v := range now {
					if _, ok := past[name]; !ok {
						rows = append(rows, costRow{Kind: kind, Name: name, PerHour: v, Month: v * hoursPerMonth})
					}
				}
			}
			sort.Slice(rows, func(i, j int) bool {
				if rows[i].Kind != rows[j].Kind {
					return rows[i].Kind < rows[j].Kind
				}
				return rows[i].Name < rows[j].Name
			})
			if output == "json" {
				enc := json.NewEncoder(std.out)
				enc.SetIndent("", "  ")
				return enc.Encode(costDocument{Currency: currency, Window: since, Rows: append([]costRow{}, rows...)})
			}
			if len(rows) == 0 {
				_, err := fmt.Fprintln(std.out, "no cost recorded yet: the cost series start with the next rule evaluation")
				return err
			}
			tw := tabwriter.NewWriter(std.out, 0, 0, 2, ' ', tabwriter.AlignRight)
			fmt.Fprintf(tw, "KIND\tNAME\t%s/HOUR NOW\t%s LAST %s\t%s/MONTH PROJECTED\t\n", currency, currency, since, currency)
			var total costRow
			for _, r := range rows {
				fmt.Fprintf(tw, "%s\t%s\t%.4f\t%.4f\t%.2f\t\n", r.Kind, orDashS(r.Name), r.PerHour, r.Window, r.Month)
				total.PerHour, total.Window, total.Month = total.PerHour+r.PerHour, total.Window+r.Window, total.Month+r.Month
			}
			fmt.Fprintf(tw, "total\t\t%.4f\t%.4f\t%.2f\t\n", total.PerHour, total.Window, total.Month)
			return tw.Flush()
		},
	}
	cmd.Flags().StringVar(&since, "since", "24h", "the window of the past cost")
	cmd.Flags().StringVar(&by, "by", "", "only services, functions or the gateway")
	outputFlag(cmd, &output)
	addrFlag(cmd, &addr)
	return cmd
}

type costRow struct {
	Kind    string  `json:"kind"`
	Name    string  `json:"name"`
	PerHour float64 `json:"perHour"`
	Window  float64 `json:"window"`
	Month   float64 `json:"monthProjected"`
}

type costDocument struct {
	Currency string    `json:"currency"`
	Window   string    `json:"window"`
	Rows     []costRow `json:"rows"`
}

// costVector evaluates expr now, by the series' service or function label.
func costVector(ctx context.Context, c *engineClient, expr string) (map[string]float64, error) {
	var ans queryAnswer
	if _, err := c.getJSON(ctx, "/api/v1/query?"+url.Values{"query": {expr}}.Encode(), &ans); err != nil {
		return nil, err
	}
	var vec model.Vector
	if err := json.Unmarshal(ans.Data.Result, &vec); err != nil {
		return nil, fmt.Errorf("cost: %w", err)
	}
	out := map[string]float64{}
	for _, s := range vec {
		name := string(s.Metric["service"])
		if name == "" {
			name = string(s.Metric["function"])
		}
		out[name] = float64(s.Value)
	}
	return out, nil
}
