package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/nubo-dev/nubo/internal/apitype"
	"github.com/spf13/cobra"
)

const statusLong = `Status shows the running engine and every replica of every service: its
state, readiness, process, port, restarts, last exit, CPU (in millicores, as
kubectl top shows it), resident memory and the last result of each probe.
Then every database (type, server version, role, state, process, port,
restarts, last backup, and why one failed), every function's instance pool (live instances out of scaling.min..max,
invocations running and waiting, counts since start, the memory limit and how
it is enforced) and every queue's depth. Sections of the spec that nubo up
does not run are listed at the end.

The engine is found from --addr, else from the spec (-f): the address its
running engine recorded, else local.console.

With --output json, stdout holds the admin API's status document, described
in docs/admin-api.md. Fields may be added to it; none is renamed or removed.`

func newStatusCmd(std stdio, g *globals) *cobra.Command {
	var output, addr string
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show the running services, databases, functions and queues",
		Long:  statusLong,
		Args:  usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			t, err := findEngine(g, addr)
			if err != nil {
				return err
			}
			var st apitype.Status
			raw, err := newEngineClient(t).getJSON(cmd.Context(), "/admin/v1/status", &st)
			if err != nil {
				return err
			}
			if output == "json" {
				var buf bytes.Buffer
				if err := json.Indent(&buf, bytes.TrimSpace(raw), "", "  "); err != nil {
					return err
				}
				buf.WriteByte('\n')
				_, err := buf.WriteTo(std.out)
				return err
			}
			writeStatus(std.out, st, time.Now())
			return nil
		},
	}
	outputFlag(cmd, &output)
	addrFlag(cmd, &addr)
	return cmd
}

// writeStatus prints the header line, a table per service, the functions'
// and the queues' tables, and the skipped sections.
func writeStatus(w io.Writer, st apitype.Status, now time.Time) {
	app := st.App
	if st.Namespace != "" && st.Namespace != st.App {
		app += " (namespace " + st.Namespace + ")"
	}
	fmt.Fprintf(w, "app %s: engine pid %d, up %s, console %s\n", app, st.PID, age(now.Sub(st.Started)), st.Console)
	if len(st.Addresses) > 0 || st.StateDir != "" {
		var parts []string
		for _, k := range []string{"gateway", "ingress", "ingress-tls", "broker", "otlp"} {
			if a := st.Addresses[k]; a != "" {
				parts = append(parts, k+" "+a)
			}
		}
		if st.StateDir != "" {
			parts = append(parts, "state "+st.StateDir)
		}
		if len(parts) > 0 {
			fmt.Fprintln(w, "  "+strings.Join(parts, ", "))
		}
	}
	writeBroker(w, st.Broker, now)
	if len(st.Services) == 0 {
		fmt.Fprintln(w, "\nno services")
	}
	for _, svc := range st.Services {
		fmt.Fprintln(w)
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "SERVICE\tREPLICA\tSTATE\tREADY\tPID\tPORT\tRESTARTS\tLAST EXIT\tCPU\tRSS\tPROBES")
		if len(svc.Replicas) == 0 {
			fmt.Fprintf(tw, "%s\t-\tno replicas\t-\t-\t-\t-\t-\t-\t-\t-\n", svc.Name)
		}
		for _, r := range svc.Replicas {
			replica := strconv.Itoa(r.Index + 1) // as the logs' prefixes name it
			if r.Retiring {
				replica += " (retiring)"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%d\t%s\t%s\t%s\t%s\n",
				svc.Name, replica, r.State, yesNo(r.Ready), orDash(r.PID), r.Port, r.Restarts,
				lastExit(r.LastExit, now), cpu(r.Usage), rss(r.Usage), probes(r))
		}
		tw.Flush()
		if sc := svc.Scaling; sc != nil {
			line := fmt.Sprintf("  autoscaling %d..%d replicas, %d desired", sc.Min, sc.Max, svc.Desired)
			if sc.LastDecision != "" {
				line += fmt.Sprintf("; last decision %s ago: %s", age(now.Sub(sc.LastDecisionTime)), sc.LastDecision)
			}
			fmt.Fprintln(w, line)
		}
		for _, r := range svc.Replicas {
			if r.LastError != "" {
				fmt.Fprintf(w, "  %s-%d: %s\n", svc.Name, r.Index+1, flat(r.LastError))
			}
		}
	}
	writeDatabases(w, st.Databases, now)
	writeFunctions(w, st.Functions, now)
	writeQueues(w, st.Queues)
	writeEventStore(w, st.EventStore)
	writeTracesStatus(w, st.Traces)
	if len(st.Skipped) > 0 {
		fmt.Fprintln(w, "\nnot run by nubo up:")
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		for _, s := range st.Skipped {
			fmt.Fprintf(tw, "  %s\t%s\n", s.Section, s.Reason)
		}
		tw.Flush()
	}
}

// writeDatabases prints a table of the databases, then why any failed.
func writeDatabases(w io.Writer, dbs []apitype.Database, now time.Time) {
	if len(dbs) == 0 {
		return
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "DATABASE\tTYPE\tVERSION\tROLE\tSTATE\tPID\tPORT\tRESTARTS\tLAST BACKUP")
	for _, d := range dbs {
		backup := "-"
		if d.LastBackup != nil {
			backup = age(now.Sub(d.LastBackup.Time)) + " ago"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d\t%s\n", d.Name, d.Type, orDashString(d.Version), d.Role, d.State,
			orDash(d.PID), orDash(d.Port), d.Restarts, backup)
	}
	tw.Flush()
	for _, d := range dbs {
		if d.Message != "" {
			fmt.Fprintf(w, "  %s: %s\n", d.Name, flat(d.Message))
		}
		for _, r := range d.Replicas {
			line := fmt.Sprintf("  %s: replica %s, pid %s, port %s, %d restarts", d.Name, r.State, orDash(r.PID), orDash(r.Port), r.Restarts)
			if r.Message != "" {
				line += ": " + flat(r.Message)
			}
			fmt.Fprintln(w, line)
		}
	}
}

func orDashString(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// writeFunctions prints a table of the functions' pools, then what went
// wrong with them: memory limits not enforced here, last failures.
func writeFunctions(w io.Writer, fns []apitype.Function, now time.Time) {
	if len(fns) == 0 {
		return
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "FUNCTION\tINSTANCES\tIN FLIGHT\tQUEUED\tINVOCATIONS\tERRORS\tCOLD STARTS\tMEMORY")
	for _, f := range fns {
		fmt.Fprintf(tw, "%s\t%d/%d..%d\t%d\t%d\t%d\t%d\t%d\t%s\n", f.Name, len(f.Instances), f.Min, f.Max,
			f.InFlight, f.Queued, f.Invocations, f.Errors, f.ColdStarts, memoryText(f))
	}
	tw.Flush()
	for _, f := range fns {
		if f.Memory != "" && strings.HasPrefix(f.MemoryEnforcement, notEnforced) {
			fmt.Fprintf(w, "  %s: memory %s %s\n", f.Name, f.Memory, flat(f.MemoryEnforcement))
		}
		if f.LastError != "" {
			line := fmt.Sprintf("  %s: %s", f.Name, flat(f.LastError))
			if !f.LastErrorTime.IsZero() {
				line += fmt.Sprintf(" (%s ago)", age(now.Sub(f.LastErrorTime)))
			}
			fmt.Fprintln(w, line)
		}
	}
}

// notEnforced starts a function's MemoryEnforcement when its limit is not
// enforced on this machine; the reason follows.
const notEnforced = "not enforced"

// memoryText is "-", "128Mi (cgroup v2)" or "128Mi (not enforced)": the
// reason it is not enforced is long, and goes below the table.
func memoryText(f apitype.Function) string {
	switch {
	case f.Memory == "":
		return "-"
	case f.MemoryEnforcement == "":
		return f.Memory
	case strings.HasPrefix(f.MemoryEnforcement, notEnforced):
		return f.Memory + " (" + notEnforced + ")"
	}
	return f.Memory + " (" + f.MemoryEnforcement + ")"
}

// writeBroker prints the broker's state when it is degraded or has
// healed: a broker that never failed needs no line.
func writeBroker(w io.Writer, b *apitype.BrokerHealth, now time.Time) {
	switch {
	case b == nil:
	case b.State != "ok":
		fmt.Fprintf(w, "  broker %s for %s: %s (it restarts itself once file descriptors are free)\n", strings.ToUpper(b.State), age(now.Sub(b.Since)), flat(b.Reason))
	case b.Recoveries > 0:
		fmt.Fprintf(w, "  broker ok; recovered %d times from a store failure, last %s ago\n", b.Recoveries, age(now.Sub(b.Since)))
	}
}

// writeQueues prints a table of the queues' depths.
func writeQueues(w io.Writer, qs []apitype.Queue) {
	if len(qs) == 0 {
		return
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "QUEUE\tTYPE\tMESSAGES\tWAITING\tIN FLIGHT\tDEAD LETTERS TO")
	for _, q := range qs {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%s\n", q.Name, orDefault(q.Type, "-"), q.Messages, q.Waiting, q.InFlight, orDefault(q.DeadLetterQueue, "-"))
	}
	tw.Flush()
}

// writeEventStore prints the event store's totals and its projections.
func writeEventStore(w io.Writer, es *apitype.EventStoreStatus) {
	if es == nil {
		return
	}
	fmt.Fprintf(w, "\nevent store: %d streams, %d events, last position %d\n", es.Streams, es.Events, es.LastPosition)
	if len(es.Projections) == 0 {
		return
	}
	writeProjections(w, es.Projections)
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func orDash(n int) string {
	if n == 0 {
		return "-"
	}
	return strconv.Itoa(n)
}

// lastExit is "-", "0 (3m ago)" or "137 SIGKILL (5s ago)".
func lastExit(e *apitype.ExitStatus, now time.Time) string {
	if e == nil {
		return "-"
	}
	s := strconv.Itoa(e.Code)
	if e.Signal != "" {
		s += " " + e.Signal
	}
	if !e.Time.IsZero() {
		s += fmt.Sprintf(" (%s ago)", age(now.Sub(e.Time)))
	}
	return s
}

// cpu is in millicores, as Kubernetes quantities and kubectl top write it.
func cpu(u *apitype.ResourceUsage) string {
	if u == nil {
		return "-"
	}
	return fmt.Sprintf("%dm", int64(math.Round(u.CPU*1000)))
}

func rss(u *apitype.ResourceUsage) string {
	if u == nil {
		return "-"
	}
	return humanBytes(u.RSS)
}

// humanBytes writes a size in binary units: 512 B, 12.3 MiB, 1.5 GiB.
func humanBytes(n uint64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := uint64(unit), 0
	for m := n / unit; m >= unit && exp < 4; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTP"[exp])
}

// probes is "liveness ok, readiness fail: status 503", in the order the
// kubelet runs them, or "-" when none has run.
func probes(r apitype.ReplicaStatus) string {
	var parts []string
	for _, kind := range []apitype.ProbeKind{apitype.ProbeStartup, apitype.ProbeLiveness, apitype.ProbeReadiness} {
		res, ok := r.Probes[kind]
		switch {
		case !ok:
		case res.OK:
			parts = append(parts, string(kind)+" ok")
		case res.Message != "":
			parts = append(parts, fmt.Sprintf("%s fail: %s", kind, shorten(flat(res.Message), maxProbeMessage)))
		default:
			parts = append(parts, string(kind)+" fail")
		}
	}
	if len(parts) == 0 {
		return "-"
	}
	return strings.Join(parts, ", ")
}

// maxProbeMessage bounds a probe's message in the table, which stays
// readable; --output json has it whole.
const maxProbeMessage = 60

// shorten cuts s to n runes, ending it with an ellipsis when cut.
func shorten(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

// flat keeps a message on one line of the table.
func flat(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// age writes a duration the way kubectl does: 12s, 3m12s, 2h5m, 3d4h.
func age(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	d = d.Round(time.Second)
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm%ds", int(d.Minutes()), int(d.Seconds())%60)
	case d < 24*time.Hour:
		return fmt.Sprintf("%dh%dm", int(d.Hours()), int(d.Minutes())%60)
	default:
		return fmt.Sprintf("%dd%dh", int(d.Hours())/24, int(d.Hours())%24)
	}
}

// writeTracesStatus says what the trace store holds and what export did.
func writeTracesStatus(w io.Writer, t *apitype.TracesStatus) {
	if t == nil {
		return
	}
	fmt.Fprintf(w, "\ntraces: %d spans in %d traces, %s on disk", t.Spans, t.Traces, humanBytes(uint64(t.DiskBytes)))
	if t.Dropped > 0 {
		fmt.Fprintf(w, ", %d dropped (recording queue full)", t.Dropped)
	}
	fmt.Fprintln(w)
	if x := t.Export; x != nil {
		fmt.Fprintf(w, "  export to %s: %d sent, %d queued, %d dropped, %d failed\n", x.Endpoint, x.Sent, x.Queued, x.Dropped, x.Failed)
	}
}
