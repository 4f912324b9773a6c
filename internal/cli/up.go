package cli

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/nubo-dev/nubo/internal/engine"
	"github.com/nubo-dev/nubo/internal/spec"
)

const upLong = `Up runs the system of a spec file on this machine, in the foreground: every
service as supervised processes with probes, restarts and autoscaling, built
first when it has a build command. Output is one stream, each line prefixed
with its service and replica (users-1 | ...), engine events under nubo.

Ctrl-C stops everything in reverse dependency order (SIGTERM, then SIGKILL
after stopGracePeriod). If nubo itself is killed, its processes die with it.

While it runs, an edit of the spec file is validated and only what changed is
applied; a change under a service's watch paths rebuilds it and rolls its
replicas. Other commands (status, logs, restart, down) talk to the running
engine through its console address (local.console).`

func newUpCmd(std stdio, g *globals) *cobra.Command {
	var noWatch, noColor bool
	var console string
	cmd := &cobra.Command{
		Use:   "up",
		Short: "Run the system of a spec file on this machine",
		Long:  upLong,
		Args:  usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, args []string) error {
			app, err := spec.Load(g.file)
			if err != nil {
				return reportLoadError(std.err, g.file, err)
			}
			for _, w := range app.Warnings() {
				fmt.Fprintln(std.err, w)
			}
			opts := engine.Options{
				Out:         std.out,
				Color:       !noColor && isTerminal(std.out),
				ConsoleAddr: console,
				NoWatch:     noWatch,
				StateDir:    g.state,
				// Where cgroups misbehave, and for tests of the other path.
				NoCgroups: os.Getenv("NUBO_NO_CGROUPS") == "1",
				Logger:    slog.New(slog.NewTextHandler(std.err, &slog.HandlerOptions{Level: slog.LevelWarn})),
			}
			if exe, err := os.Executable(); err == nil {
				opts.ReaperArgv = []string{exe, reaperCommand}
			}
			e, err := engine.New(app, opts)
			if err != nil {
				return err
			}
			return e.Run(cmd.Context())
		},
	}
	cmd.Flags().BoolVar(&noWatch, "no-watch", false, "do not reload on changes of the spec or of services' watch paths")
	cmd.Flags().BoolVar(&noColor, "no-color", false, "do not color the output")
	cmd.Flags().StringVar(&console, "console", "", "listen address of the console and admin API (default: local.console)")
	return cmd
}

// reaperCommand is the hidden command nubo up re-executes itself as, to kill
// the system's processes if nubo is killed (see internal/engine/reaper.go).
const reaperCommand = "__reaper"

func newReaperCmd(std stdio) *cobra.Command {
	return &cobra.Command{
		Use:    reaperCommand,
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			engine.RunReaper(std.in, 10*time.Second)
			return nil
		},
	}
}

// reportLoadError prints a spec's diagnostics as validate does and returns
// errReported; a file that cannot be read gets one clear line.
func reportLoadError(w io.Writer, file string, err error) error {
	var ds spec.Diagnostics
	if errors.As(err, &ds) {
		for _, d := range ds {
			fmt.Fprintln(w, d)
		}
		n := len(ds.Errors())
		fmt.Fprintf(w, "%s in %s\n", plural(n, "error"), file)
		return errReported
	}
	if errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("%s: no such file; run nubo init or pass -f FILE", file)
	}
	return err
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}
