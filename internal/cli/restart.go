package cli

import (
	"fmt"
	"net/url"

	"github.com/spf13/cobra"
)

func newRestartCmd(std stdio, g *globals) *cobra.Command {
	var addr string
	cmd := &cobra.Command{
		Use:               "restart SERVICE",
		ValidArgsFunction: completeNames(g, serviceNames),
		Short:             "Restart a running service's replicas one by one",
		Long: `Restart replaces every replica of SERVICE in the running engine, one by one,
each new replica ready before an old one stops, as a rolling restart does in
Kubernetes (kubectl rollout restart). It returns once the restart has begun;
nubo status and nubo logs show its progress.`,
		Example: "  nubo restart users",
		Args:    usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			t, err := findEngine(g, addr)
			if err != nil {
				return err
			}
			name := args[0]
			if err := newEngineClient(t).post(cmd.Context(), "/admin/v1/services/"+url.PathEscape(name)+"/restart"); err != nil {
				return err
			}
			_, err = fmt.Fprintf(std.out, "restarting %s\n", name)
			return err
		},
	}
	addrFlag(cmd, &addr)
	return cmd
}
