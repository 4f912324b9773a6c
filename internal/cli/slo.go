package cli

import (
	"fmt"
	"io"
	"net/url"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/nubo-dev/nubo/internal/apitype"
)

const sloLong = `SLO prints each SLO of the running engine: its objective and window, the
SLI (the share of good events over the window), the error budget left and
how fast it burns over each window of the burn-rate alerts (1 spends the
budget in exactly the window; the page alert fires above 14.4 over 1h and
5m, or 6 over 6h and 30m; the ticket alert above 3 over 1d and 2h, or 1 over
3d and 6h), and which of its alerts fire.

With NAME, one SLO in detail, with each indicator's SLI.

The figures come from the recording rules nubo evaluates every
observability.metrics.interval; "-" means no data yet (no traffic, or the
rules have not run). With --output json, stdout holds the admin API's
document (GET /admin/v1/slos, described in docs/observability.md).`

func newSLOCmd(std stdio, g *globals) *cobra.Command {
	var output, addr string
	cmd := &cobra.Command{
		Use:     "slo [NAME]",
		Short:   "Show SLOs: SLI, error budget left and burn rates",
		Long:    sloLong,
		Example: "  nubo slo\n  nubo slo users-availability",
		Args:    usageArgs(cobra.MaximumNArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			t, err := findEngine(g, addr)
			if err != nil {
				return err
			}
			c := newEngineClient(t)
			if len(args) == 1 {
				var st apitype.SLO
				raw, err := c.getJSON(cmd.Context(), "/admin/v1/slos/"+url.PathEscape(args[0]), &st)
				if err != nil {
					return err
				}
				if output == "json" {
					return writeIndented(std.out, raw)
				}
				writeSLODetail(std.out, st)
				return nil
			}
			var list struct {
				SLOs []apitype.SLO `json:"slos"`
			}
			raw, err := c.getJSON(cmd.Context(), "/admin/v1/slos", &list)
			if err != nil {
				return err
			}
			if output == "json" {
				return writeIndented(std.out, raw)
			}
			writeSLOs(std.out, list.SLOs)
			return nil
		},
	}
	outputFlag(cmd, &output)
	addrFlag(cmd, &addr)
	return cmd
}

// burnWindows are the columns of nubo slo: the burn-rate alerts' windows.
// The SLO's own window is in BUDGET LEFT.
func burnWindows() []string { return []string{"5m", "30m", "1h", "2h", "6h", "1d", "3d"} }

// writeSLOs prints one line per SLO, a column per burn-rate window.
func writeSLOs(w io.Writer, slos []apitype.SLO) {
	if len(slos) == 0 {
		fmt.Fprintln(w, "no SLOs (observability.slos is empty)")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	head := "SLO\tOBJECTIVE\tWINDOW\tSLI\tBUDGET LEFT"
	for _, win := range burnWindows() {
		head += "\tBURN " + win
	}
	fmt.Fprintln(tw, head+"\tALERTS")
	for _, s := range slos {
		line := fmt.Sprintf("%s\t%s%%\t%s\t%s\t%s", s.Name, num(s.Objective), s.Window, percent(s.SLI, 3), budgetLeft(s))
		for _, win := range burnWindows() {
			cell := "-"
			for _, br := range s.BurnRates {
				if br.Window == win {
					cell = rate(br.Rate)
				}
			}
			line += "\t" + cell
		}
		fmt.Fprintln(tw, line+"\t"+alertsText(s))
	}
	tw.Flush()
}

// writeSLODetail prints one SLO with its indicators and every burn rate.
func writeSLODetail(w io.Writer, s apitype.SLO) {
	fmt.Fprintf(w, "%s: %s%% over %s\n", s.Name, num(s.Objective), s.Window)
	if s.Description != "" {
		fmt.Fprintf(w, "  %s\n", s.Description)
	}
	fmt.Fprintf(w, "\nSLI %s; error budget %s of events (%s of full outage per %s), left %s\n",
		percent(s.SLI, 3), percentOf(s.ErrorBudget.Total, 3), duration(s.ErrorBudget.TotalSeconds), s.Window, budgetLeft(s))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "\nINDICATOR\tTYPE\tWEIGHT\tSLI")
	for _, in := range s.Indicators {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", in.Name, in.Type, num(in.Weight), percent(in.SLI, 3))
	}
	tw.Flush()
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "\nWINDOW\tBURN RATE")
	for _, br := range s.BurnRates {
		fmt.Fprintf(tw, "%s\t%s\n", br.Window, rate(br.Rate))
	}
	tw.Flush()
	fmt.Fprintf(w, "\nalerts: %s\n", alertsText(s))
}

// budgetLeft is "20.4% (2m3s)", or "-" without data.
func budgetLeft(s apitype.SLO) string {
	b := s.ErrorBudget
	if b.Remaining == nil {
		return "-"
	}
	out := percent(b.Remaining, 1)
	if b.RemainingSeconds != nil {
		if *b.RemainingSeconds < 0 {
			out += " (overspent)"
		} else {
			out += " (" + duration(*b.RemainingSeconds) + ")"
		}
	}
	return out
}

// alertsText lists the alerts not inactive: "page firing", or "-".
func alertsText(s apitype.SLO) string {
	var parts []string
	for _, a := range s.Alerts {
		if a.State != "inactive" {
			parts = append(parts, a.Class+" "+a.State)
		}
	}
	if len(parts) == 0 {
		return "-"
	}
	return strings.Join(parts, ", ")
}

func percent(f *float64, decimals int) string {
	if f == nil {
		return "-"
	}
	return percentOf(*f, decimals)
}

func percentOf(f float64, decimals int) string {
	return strconv.FormatFloat(f*100, 'f', decimals, 64) + "%"
}

func rate(f *float64) string {
	if f == nil {
		return "-"
	}
	return strconv.FormatFloat(*f, 'f', 2, 64)
}

func num(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }

// duration writes seconds as 43m12s or 6d1h.
func duration(sec float64) string {
	d := time.Duration(sec * float64(time.Second)).Round(time.Second)
	if d >= 24*time.Hour {
		return age(d)
	}
	return d.String()
}
