package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/user"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/nubo-dev/nubo/internal/alerting"
	"github.com/nubo-dev/nubo/internal/apitype"
	"github.com/nubo-dev/nubo/internal/spec"
)

const alertsLong = `Alerts lists the alerts of the running engine that are pending or firing,
by name: state, severity, how long, where the escalation policy is, who
acknowledged it and how many instances (series of the expression) it has;
then the silences.

An alert fires once its expression has held for its for; it notifies its
channels and starts its escalation policy. nubo alerts ack NAME stops the
escalation; nubo alerts silence mutes alerts for a while.

With --output json, stdout holds the admin API's document
(GET /admin/v1/alerts, described in docs/observability.md).`

func newAlertsCmd(std stdio, g *globals) *cobra.Command {
	var output, addr string
	cmd := &cobra.Command{
		Use:   "alerts",
		Short: "List pending and firing alerts; acknowledge and silence them",
		Long:  alertsLong,
		Args:  usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, args []string) error {
			var st apitype.Alerts
			if done, err := getForOutput(cmd, std, g, addr, output, "/admin/v1/alerts", &st); done || err != nil {
				return err
			}
			writeAlerts(std.out, st, time.Now())
			return nil
		},
	}
	outputFlag(cmd, &output)
	addrFlag(cmd, &addr)
	cmd.AddCommand(newAlertsAckCmd(std, g), newAlertsSilenceCmd(std, g), newAlertsUnsilenceCmd(std, g))
	return cmd
}

func newAlertsAckCmd(std stdio, g *globals) *cobra.Command {
	var addr, by string
	cmd := &cobra.Command{
		Use:   "ack NAME",
		Short: "Acknowledge a firing alert: its escalation stops",
		Long: `Ack acknowledges the firing alert NAME: the steps of its escalation policy
with condition unacknowledged are skipped from now on and the policy does not
repeat; steps with condition always still run. The acknowledgement lasts
until the alert resolves.`,
		Example: "  nubo alerts ack high_error_rate",
		Args:    usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			t, err := findEngine(g, addr)
			if err != nil {
				return err
			}
			q := url.Values{"by": {orDefault(by, whoAmI())}}
			var st apitype.AlertStatus
			path := "/admin/v1/alerts/" + url.PathEscape(args[0]) + "/ack?" + q.Encode()
			if err := newEngineClient(t).send(cmd.Context(), http.MethodPost, path, &st); err != nil {
				return err
			}
			msg := "acknowledged " + st.Name
			if e := st.Escalation; e != nil && e.Done {
				msg += "; escalation " + e.Policy + " stopped"
			} else if e != nil {
				msg += "; escalation " + e.Policy + " runs only its always steps"
			}
			_, err = fmt.Fprintln(std.out, msg)
			return err
		},
	}
	cmd.Flags().StringVar(&by, "by", "", "who acknowledges (default: your user name)")
	addrFlag(cmd, &addr)
	return cmd
}

func newAlertsSilenceCmd(std stdio, g *globals) *cobra.Command {
	var addr, dur, comment, by string
	cmd := &cobra.Command{
		Use:   "silence MATCHER --for DURATION",
		Short: "Mute the alerts a matcher selects for a while",
		Long: `Silence mutes the alerts MATCHER selects for --for: they stay listed, but
notify nobody and escalate nowhere. A firing alert that a silence mutes
leaves its incident without a resolved notification; when the silence ends
and the alert still fires, it notifies again.

MATCHER is an alert name, or label matchers as PromQL writes them:
alertname=high_error_rate,severity=~"crit.*" (braces and quotes optional).`,
		Example: `  nubo alerts silence high_error_rate --for 1h
  nubo alerts silence 'severity=warning,team=users' --for 30m --comment "deploying"`,
		Args: usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			if dur == "" {
				return usageErrorf("--for is required: how long the silence lasts, e.g. 1h")
			}
			if d, err := spec.ParseDuration(dur); err != nil || d <= 0 {
				return usageErrorf("--for %q: want a duration such as 30m, 1h or 2d", dur)
			}
			if _, err := alerting.ParseMatchers(args[0]); err != nil {
				return usageErrorf("matcher %q: %v", args[0], err)
			}
			t, err := findEngine(g, addr)
			if err != nil {
				return err
			}
			q := url.Values{"matchers": {args[0]}, "for": {dur}, "createdBy": {orDefault(by, whoAmI())}}
			if comment != "" {
				q.Set("comment", comment)
			}
			var s apitype.Silence
			if err := newEngineClient(t).send(cmd.Context(), http.MethodPost, "/admin/v1/silences?"+q.Encode(), &s); err != nil {
				return err
			}
			_, err = fmt.Fprintf(std.out, "silenced %s until %s (silence %s)\n", s.Matchers, s.EndsAt.Local().Format("2006-01-02 15:04:05"), s.ID)
			return err
		},
	}
	cmd.Flags().StringVar(&dur, "for", "", "how long the silence lasts, e.g. 1h (required)")
	cmd.Flags().StringVar(&comment, "comment", "", "why")
	cmd.Flags().StringVar(&by, "by", "", "who silences (default: your user name)")
	addrFlag(cmd, &addr)
	return cmd
}

func newAlertsUnsilenceCmd(std stdio, g *globals) *cobra.Command {
	var addr string
	cmd := &cobra.Command{
		Use:   "unsilence ID",
		Short: "End a silence now",
		Args:  usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			t, err := findEngine(g, addr)
			if err != nil {
				return err
			}
			var s apitype.Silence
			if err := newEngineClient(t).send(cmd.Context(), http.MethodDelete, "/admin/v1/silences/"+url.PathEscape(args[0]), &s); err != nil {
				return err
			}
			_, err = fmt.Fprintf(std.out, "silence %s (%s) ended\n", s.ID, s.Matchers)
			return err
		},
	}
	addrFlag(cmd, &addr)
	return cmd
}

// send makes a request whose JSON answer is decoded into v.
func (c *engineClient) send(ctx context.Context, method, path string, v any) error {
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	resp, err := c.do(ctx, method, path)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	if err != nil {
		return fmt.Errorf("read the answer of the engine at %s: %w", c.target.addr, err)
	}
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("the server at %s (%s) does not answer as a nubo engine: %s %s: %w", c.target.addr, c.target.source, method, path, err)
	}
	return nil
}

// whoAmI names the user for acknowledgements and silences.
func whoAmI() string {
	if u, err := user.Current(); err == nil && u.Username != "" {
		return u.Username
	}
	return os.Getenv("USER")
}

func orDefault(v, def string) string {
	if v != "" {
		return v
	}
	return def
}

// writeAlerts prints the alerts table, then the active silences.
func writeAlerts(w io.Writer, st apitype.Alerts, now time.Time) {
	if len(st.Alerts) == 0 {
		fmt.Fprintln(w, "no alerts pending or firing")
	} else {
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "ALERT\tSTATE\tSEVERITY\tSINCE\tESCALATION\tACKNOWLEDGED\tINSTANCES")
		for _, a := range st.Alerts {
			state := string(a.State)
			if a.Silenced {
				state += " (silenced)"
			}
			since := a.ActiveAt
			if !a.FiredAt.IsZero() {
				since = a.FiredAt
			}
			ack := "-"
			if a.Acknowledged != nil {
				ack = fmt.Sprintf("%s %s ago", orDefault(a.Acknowledged.By, "someone"), age(now.Sub(a.Acknowledged.At)))
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", a.Name, state, orDefault(a.Severity, "-"), age(now.Sub(since)),
				escalationText(a.Escalation, now), ack, instancesText(a.Instances))
		}
		tw.Flush()
	}
	var active []apitype.Silence
	for _, s := range st.Silences {
		if s.State == "active" {
			active = append(active, s)
		}
	}
	if len(active) == 0 {
		return
	}
	fmt.Fprintln(w, "\nsilences:")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  ID\tMATCHERS\tENDS IN\tBY\tCOMMENT")
	for _, s := range active {
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\n", s.ID, s.Matchers, age(s.EndsAt.Sub(now)), orDefault(s.CreatedBy, "-"), orDefault(flat(s.Comment), "-"))
	}
	tw.Flush()
}

// escalationText is "critical step 1/2, next in 14m", with the repeat when
// one is under way, or "critical done".
func escalationText(e *apitype.Escalation, now time.Time) string {
	if e == nil {
		return "-"
	}
	s := fmt.Sprintf("%s step %d/%d", e.Policy, e.Step, e.Steps)
	if e.Repeat > 0 {
		s += fmt.Sprintf(" (repeat %d/%d)", e.Repeat, e.MaxRepeat)
	}
	if e.Done {
		return s + ", done"
	}
	return s + ", next in " + age(e.Next.Sub(now))
}

// instancesText is "1", or "3 (1 pending, 1 silenced)".
func instancesText(in []apitype.AlertInstance) string {
	pending, silenced := 0, 0
	for _, i := range in {
		if i.State == apitype.AlertPending {
			pending++
		}
		if i.SilencedBy != "" {
			silenced++
		}
	}
	var notes []string
	if pending > 0 && pending < len(in) {
		notes = append(notes, fmt.Sprintf("%d pending", pending))
	}
	if silenced > 0 {
		notes = append(notes, fmt.Sprintf("%d silenced", silenced))
	}
	s := fmt.Sprint(len(in))
	if len(notes) > 0 {
		s += " (" + strings.Join(notes, ", ") + ")"
	}
	return s
}
