// Package cli is nubo's command line. cmd/nubo only calls Run; everything a
// command needs (its streams, its flags) comes through newRootCmd, so tests
// run the whole tree in process and nothing is global.
//
// Conventions, as in kubectl and tailscale: noun-verb commands; results on
// stdout and diagnostics on stderr; `--output json` gives one JSON document
// whose shape is stable (fields are added, never renamed or removed); exit
// code 0 on success, 1 on failure, 2 on a usage error.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/nubo-dev/nubo/internal/spec"
)

// Exit codes of Run.
const (
	exitOK    = 0
	exitFail  = 1
	exitUsage = 2
)

// stdio are the streams of one run.
type stdio struct {
	in  io.Reader
	out io.Writer // results
	err io.Writer // diagnostics
}

// globals are the flags every command shares.
type globals struct {
	// file is the spec file (-f), nubo.yaml by default.
	file string
	// state overrides the spec's local.stateDir (--state, $NUBO_STATE), so
	// that copies of one spec run side by side.
	state string
}

// stateDirOf applies --state to a loaded spec.
func (g *globals) stateDirOf(app *spec.App) *spec.App {
	if g.state != "" {
		if abs, err := filepath.Abs(g.state); err == nil {
			app.Local.StateDir = abs
		}
	}
	return app
}

// Run runs the nubo command line with args (without the program name) and
// returns the process's exit code.
func Run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	root := newRootCmd(stdio{in: stdin, out: stdout, err: stderr})
	if args == nil {
		args = []string{} // cobra reads os.Args when given nil
	}
	root.SetArgs(args)
	cmd, err := root.ExecuteContextC(ctx)
	return exitCode(cmd, err, stderr)
}

// newRootCmd builds the command tree, reading and writing std.
func newRootCmd(std stdio) *cobra.Command {
	g := &globals{}
	root := &cobra.Command{
		Use:   "nubo",
		Short: "Run a whole cloud-native system from one file",
		Long: `nubo runs a whole cloud-native system from one declarative file, nubo.yaml:
services, mesh, gateway, functions, events, databases and observability.
nubo up runs it on this machine in one process; nubo render turns the same
file into Kubernetes manifests.`,
		// Runnable, so that an unknown command is reported as a usage error
		// here rather than by cobra's finder.
		Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				msg := fmt.Sprintf("unknown command %q", args[0])
				if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
					msg += fmt.Sprintf(" (did you mean %q?)", s[0])
				}
				return usageErrorf("%s", msg)
			}
			return cmd.Help()
		},
		SilenceErrors:              true,
		SilenceUsage:               true,
		SuggestionsMinimumDistance: 2,
	}
	root.SetIn(std.in)
	root.SetOut(std.out)
	root.SetErr(std.err)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	root.PersistentFlags().StringVarP(&g.file, "file", "f", "nubo.yaml", "the spec file")
	root.PersistentFlags().StringVar(&g.state, "state", os.Getenv("NUBO_STATE"), "the state directory, instead of the spec's local.stateDir (default $NUBO_STATE): copies of one spec run side by side, each with its own")
	// Root flags may stand before the subcommand: nubo -f x.yaml logs -f.
	root.TraverseChildren = true

	root.AddCommand(
		newValidateCmd(std, g),
		newSchemaCmd(std),
		newInitCmd(std),
		newVersionCmd(std),
		newUpCmd(std, g),
		newReaperCmd(std),
		newCACmd(std, g),
		newStatusCmd(std, g),
		newLogsCmd(std, g),
		newTracesCmd(std, g),
		newTraceCmd(std, g),
		newRestartCmd(std, g),
		newScaleCmd(std, g),
		newDownCmd(std, g),
		newSecretCmd(std, g),
		newInvokeCmd(std, g),
		newPublishCmd(std, g),
		newDLQCmd(std, g),
		newEventStoreCmd(std, g),
		newDBCmd(std, g),
		newQueryCmd(std, g),
		newAlertsCmd(std, g),
		newSLOCmd(std, g),
		newRenderCmd(std, g),
		newDiffCmd(std, g),
		newDeployCmd(std, g),
		newOpenAPICmd(std, g),
		newDashboardsCmd(std, g),
		newServeCmd(std),
		newMCPCmd(std, g),
		newAuditCmd(std, g),
		newCostCmd(std, g),
		newBackupCmd(std, g),
		newRestoreCmd(std, g),
	)
	return root
}

// usageError is a mistake in how a command was called: exit code 2.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func usageErrorf(format string, args ...any) error {
	return usageError{fmt.Errorf(format, args...)}
}

// usageArgs makes a cobra argument check's error a usage error.
func usageArgs(check cobra.PositionalArgs) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if err := check(cmd, args); err != nil {
			return usageError{err}
		}
		return nil
	}
}

// errReported is returned by a command that has already told the user what
// went wrong (validate's diagnostics): Run prints nothing more.
var errReported = errors.New("failure already reported")

// exitCode reports err on stderr and returns the exit code it means.
func exitCode(cmd *cobra.Command, err error, stderr io.Writer) int {
	var usage usageError
	switch {
	case err == nil:
		return exitOK
	case errors.Is(err, errReported):
		return exitFail
	case errors.As(err, &usage):
		fmt.Fprintf(stderr, "nubo: %v\n", err)
		if cmd != nil {
			fmt.Fprintf(stderr, "Run '%s --help' for usage.\n", cmd.CommandPath())
		}
		return exitUsage
	case errors.Is(err, context.Canceled):
		fmt.Fprintln(stderr, "nubo: interrupted")
		return exitFail
	default:
		fmt.Fprintf(stderr, "nubo: %v\n", err)
		return exitFail
	}
}

// outputFlag adds --output (-o) with the formats text and json.
func outputFlag(cmd *cobra.Command, format *string) {
	cmd.Flags().StringVarP(format, "output", "o", "text", "output format: text or json")
}

// checkOutput refuses an unknown --output format.
func checkOutput(format string) error {
	switch format {
	case "text", "json":
		return nil
	}
	return usageErrorf("--output %q: use text or json", format)
}
