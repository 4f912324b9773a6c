package cli

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nubo-dev/nubo/internal/engine"
	"github.com/spf13/cobra"
)

// downTimeout bounds the wait for the engine to stop: long enough for the
// default stopGracePeriod (30s) and the engine's own margin.
const downTimeout = 60 * time.Second

func newDownCmd(std stdio, g *globals) *cobra.Command {
	var addr string
	cmd := &cobra.Command{
		Use:   "down",
		Short: "Stop the running engine and everything it runs",
		Long: `Down asks the running engine to stop, as Ctrl-C in nubo up does: services
stop in reverse dependency order (SIGTERM, then SIGKILL after their
stopGracePeriod), then the engine itself. Down waits until the engine has
stopped, up to a minute, and prints stopped.`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, args []string) error {
			t, err := findEngine(g, addr)
			if err != nil {
				return err
			}
			c := newEngineClient(t)
			if err := c.post(cmd.Context(), "/admin/v1/shutdown"); err != nil {
				return err
			}
			fmt.Fprintf(std.err, "stopping the engine at %s\n", t.addr)
			if err := waitStopped(cmd.Context(), c); err != nil {
				return err
			}
			_, err = fmt.Fprintln(std.out, "stopped")
			return err
		},
	}
	addrFlag(cmd, &addr)
	return cmd
}

// waitStopped waits until the console no longer answers and, when the
// state directory is known, until the engine has released its lock: the
// console stops last, but the lock is the engine's very end.
func waitStopped(ctx context.Context, c *engineClient) error {
	ctx, cancel := context.WithTimeout(ctx, downTimeout)
	defer cancel()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		if !c.answers(ctx) && !holdsLock(c.target) {
			return nil
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return fmt.Errorf("the engine at %s has not stopped after %v; it may still be waiting for services to exit (their stopGracePeriod)", c.target.addr, downTimeout)
			}
			return ctx.Err()
		}
	}
}

// holdsLock reports whether the engine found in the state directory's lock
// still holds it; a different engine there is not the one asked to stop.
func holdsLock(t engineTarget) bool {
	if t.stateDir == "" || t.lockPID == 0 {
		return false
	}
	info, ok := engine.ReadLock(t.stateDir)
	return ok && info.PID == t.lockPID
}
