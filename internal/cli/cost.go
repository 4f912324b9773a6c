package cli

import (
	"fmt"
	"net/url"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/nubo-dev/nubo/internal/apitype"
	"github.com/nubo-dev/nubo/internal/spec"
)

const costLong = `Cost prints what the running system costs at the spec's prices (the cost
section): per service (CPU and resident memory), per function (GB-seconds and
invocations) and for the API gateway (requests), as the cost per hour now, the
cost over the window (--since, default 24h, of what the engine recorded), and
the month projected from now (730 hours). The cost now comes from the
engine's nubo:cost_per_hour series, which nubo query and alert rules can use
too; the window's from the usage counters' increase over it. The engine
answers it (GET /admin/v1/cost), so the figures are those the console shows.`

func newCostCmd(std stdio, g *globals) *cobra.Command {
	var addr, since, by, output string
	cmd := &cobra.Command{
		Use:   "cost",
		Short: "Print what the running system costs at the spec's prices",
		Long:  costLong,
		Args:  usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, args []string) error {
			if window, err := spec.ParseDuration(since); err != nil || window <= 0 {
				return usageErrorf("--since %q: want a duration such as 1h or 24h", since)
			}
			switch by {
			case "", "service", "function", "gateway":
			default:
				return usageErrorf("--by %q: want service, function or gateway", by)
			}
			var rep apitype.CostReport
			q := url.Values{"since": {since}}
			if by != "" {
				q.Set("by", by)
			}
			if done, err := getForOutput(cmd, std, g, addr, output, "/admin/v1/cost?"+q.Encode(), &rep); done || err != nil {
				return err
			}
			if len(rep.Rows) == 0 {
				_, err := fmt.Fprintln(std.out, "no cost recorded yet: the cost series start with the next rule evaluation")
				return err
			}
			tw := tabwriter.NewWriter(std.out, 0, 0, 2, ' ', tabwriter.AlignRight)
			fmt.Fprintf(tw, "KIND\tNAME\t%s/HOUR NOW\t%s LAST %s\t%s/MONTH PROJECTED\t\n", rep.Currency, rep.Currency, since, rep.Currency)
			var total apitype.CostRow
			for _, r := range rep.Rows {
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
