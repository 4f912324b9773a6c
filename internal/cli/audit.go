package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/nubo-dev/nubo/internal/apitype"
	"github.com/nubo-dev/nubo/internal/audit"
	"github.com/nubo-dev/nubo/internal/spec"
)

// auditCLI records a change the CLI makes without an engine (secrets,
// deploys) in the spec's audit trail. A trail that cannot be written is
// said on stderr, never a reason to fail the change itself.
func auditCLI(app *spec.App, action, target, detail string, err error) {
	if _, aerr := audit.Open(app.StatePath()).Append(audit.Record{Actor: audit.Actor("cli"), Action: action, Target: target, Detail: detail}, err); aerr != nil {
		fmt.Fprintf(os.Stderr, "nubo: warning: the audit trail was not written: %v\n", aerr)
	}
}

const auditLong = `Audit prints the audit trail of the spec's state directory: every change made
to the system (reloads, restarts, stops, publishes, invocations, redrives and
silences from the CLI, the console or MCP; secrets set or removed, never their
values; deploys), who made it, when, and the result.

Each record carries the hash of the one before it. nubo audit verify checks the
chain and says where it breaks: a record changed, inserted or removed.`

func newAuditCmd(std stdio, g *globals) *cobra.Command {
	var since, action, output string
	cmd := &cobra.Command{
		Use:   "audit",
		Short: "Print the audit trail: every change made to the system",
		Long:  auditLong,
		Args:  usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			q := audit.Query{Action: action}
			if since != "" {
				t, err := apitype.ParseSince(since, time.Now())
				if err != nil {
					return usageErrorf("--%v", err)
				}
				q.Since = t
			}
			trail, err := auditTrailOf(g)
			if err != nil {
				return err
			}
			recs, err := trail.Read(q)
			if err != nil {
				return err
			}
			if output == "json" {
				enc := json.NewEncoder(std.out)
				enc.SetIndent("", "  ")
				if recs == nil {
					recs = []audit.Record{}
				}
				return enc.Encode(recs)
			}
			if len(recs) == 0 {
				_, err := fmt.Fprintln(std.out, "no changes recorded")
				return err
			}
			tw := tabwriter.NewWriter(std.out, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "SEQ\tTIME\tACTOR\tACTION\tTARGET\tRESULT\tDETAIL")
			for _, r := range recs {
				res := r.Result
				if r.Error != "" {
					res += ": " + r.Error
				}
				fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Seq, r.Time.Local().Format(time.DateTime), r.Actor, r.Action, orDashS(r.Target), res, r.Detail)
			}
			return tw.Flush()
		},
	}
	cmd.Flags().StringVar(&since, "since", "", "only changes since a duration ago (24h) or an RFC 3339 time")
	cmd.Flags().StringVar(&action, "action", "", "only changes of this action (restart, reload, publish, secret-set, ...)")
	outputFlag(cmd, &output)
	cmd.AddCommand(&cobra.Command{
		Use:   "verify",
		Short: "Check the audit trail's hash chain",
		Args:  usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, args []string) error {
			trail, err := auditTrailOf(g)
			if err != nil {
				return err
			}
			n, err := trail.Verify()
			var be *audit.BreakError
			if errors.As(err, &be) {
				return fmt.Errorf("%s: the chain breaks at %v; the %d records before it hold", trail.Path(), be, n)
			}
			if err != nil {
				return err
			}
			_, err = fmt.Fprintf(std.out, "%s: %d records, the chain holds\n", trail.Path(), n)
			return err
		},
	})
	return cmd
}

func auditTrailOf(g *globals) (*audit.Trail, error) {
	app, err := loadSpecFor(g.file, "find its audit trail", false)
	if err != nil {
		return nil, err
	}
	g.stateDirOf(app)
	return audit.Open(app.StatePath()), nil
}

func orDashS(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
