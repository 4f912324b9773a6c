package cli

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/nubo-dev/nubo/internal/serve"
	"github.com/nubo-dev/nubo/internal/spec"
)

const serveLong = `Serve runs some of nubo's own components on their own, as the Deployments
nubo render makes run them on Kubernetes: gateway (the API gateway) and events
(the dispatcher of queues, topics, rules, schedules and functions' triggers).
It is the same code nubo up runs in one process.

The spec is the file the rendered ConfigMap mounts (--spec); secrets are read
from NUBO_SECRETS_DIR (one folder per secret, one file per key); events
connect to --nats-url (NUBO_NATS_URL). Services are reached at their
Kubernetes Services and functions at their Knative Services in the spec's
namespace (NUBO_NAMESPACE); NUBO_SERVICE_<NAME>_URL and
NUBO_FUNCTION_<NAME>_URL override one.

One listener (--listen, NUBO_LISTEN; default 127.0.0.1:8080) serves /healthz,
/readyz, /metrics, the platform API under /v1/ (events) and the gateway's
routes. SIGTERM stops it gracefully.`

func newServeCmd(std stdio) *cobra.Command {
	var specFile, natsURL, listen string
	cmd := &cobra.Command{
		Use:       "serve COMPONENT...",
		Short:     "Run nubo's own components (gateway, events) as on Kubernetes",
		Long:      serveLong,
		Args:      usageArgs(cobra.MinimumNArgs(1)),
		ValidArgs: serve.Components,
		RunE: func(cmd *cobra.Command, args []string) error {
			for _, a := range args {
				if !slices.Contains(serve.Components, a) {
					return usageErrorf("unknown component %q%s (one of %s)", a, didYouMean(a, serve.Components), strings.Join(serve.Components, ", "))
				}
			}
			app, err := spec.Load(specFile)
			if err != nil {
				return reportLoadError(std.err, specFile, err)
			}
			if natsURL == "" {
				natsURL = os.Getenv("NUBO_NATS_URL")
			}
			if listen == "" {
				listen = os.Getenv("NUBO_LISTEN")
			}
			log := slog.New(slog.NewJSONHandler(std.err, &slog.HandlerOptions{Level: slog.LevelInfo}))
			s, err := serve.New(serve.Config{
				App: app, Components: args, NATSURL: natsURL, Listen: listen,
				SecretsDir: os.Getenv("NUBO_SECRETS_DIR"), Namespace: os.Getenv("NUBO_NAMESPACE"),
				Logger: log,
			})
			if err != nil {
				return err
			}
			if err := s.Start(cmd.Context()); err != nil {
				return err
			}
			log.Info("serving", "components", args, "addr", s.Addr())
			<-cmd.Context().Done()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if err := s.Stop(ctx); err != nil {
				return fmt.Errorf("stop: %w", err)
			}
			log.Info("stopped")
			return nil
		},
	}
	cmd.Flags().StringVar(&specFile, "spec", "nubo.yaml", "the spec file (the rendered ConfigMap mounts it)")
	cmd.Flags().StringVar(&natsURL, "nats-url", "", "the NATS server of the events component (default $NUBO_NATS_URL)")
	cmd.Flags().StringVar(&listen, "listen", "", "the listen address (default $NUBO_LISTEN, else "+serve.DefaultListen+")")
	return cmd
}
