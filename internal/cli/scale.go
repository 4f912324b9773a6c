package cli

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"

	"github.com/spf13/cobra"
)

func newScaleCmd(std stdio, g *globals) *cobra.Command {
	var addr string
	cmd := &cobra.Command{
		Use:               "scale SERVICE REPLICAS",
		ValidArgsFunction: completeNames(g, serviceNames),
		Short:             "Set a running service's replica count by hand",
		Long: `Scale sets how many replicas of SERVICE the running engine keeps, as kubectl
scale does: new replicas start, surplus ones stop. It holds until the spec's
replicas change or nubo up restarts. A service with scaling is the
autoscaler's to scale: change its scaling in the spec instead.`,
		Example: "  nubo scale catalog 3",
		Args:    usageArgs(cobra.ExactArgs(2)),
		RunE: func(cmd *cobra.Command, args []string) error {
			n, err := strconv.Atoi(args[1])
			if err != nil || n < 0 {
				return usageErrorf("replicas %q: want a number, 0 or more", args[1])
			}
			t, err := findEngine(g, addr)
			if err != nil {
				return err
			}
			body, _ := json.Marshal(map[string]int{"replicas": n})
			var ans struct {
				Status string `json:"status"`
			}
			if _, err := newEngineClient(t).sendBody(cmd.Context(), http.MethodPost, "/admin/v1/services/"+url.PathEscape(args[0])+"/scale", "application/json", body, &ans); err != nil {
				return err
			}
			_, err = fmt.Fprintf(std.out, "scaling %s to %d replicas\n", args[0], n)
			return err
		},
	}
	addrFlag(cmd, &addr)
	return cmd
}
