package cli

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/nubo-dev/nubo/internal/k8s"
)

const deployLong = `Deploy renders a spec file and server-side applies it to a Kubernetes
cluster, as field manager nubo, in order: the namespace, accounts, config
and secrets, workloads, then the objects of Istio, Knative, the NATS
JetStream controller, CloudNativePG and the Prometheus Operator. The server
validates every field strictly: an unknown one is an error.

Secrets get their values from the sources nubo up reads (the environment,
the dotenv files, the encrypted local store) straight into the cluster;
they are never written to disk. A value missing from every source stops the
deploy before anything is applied. Database roles' passwords are generated
on the first deploy and kept.

--prune deletes the objects of this app (by their labels) that the spec no
longer renders. --wait waits until the Deployments and StatefulSets have
rolled out and the Knative Services and PostgreSQL clusters are ready,
printing each one's progress; if --timeout passes first, the error names
every workload not ready and what its pods say.`

func newDeployCmd(std stdio, g *globals) *cobra.Command {
	var flags k8sFlags
	var cluster clusterFlags
	var opts k8s.DeployOptions
	cmd := &cobra.Command{
		Use:   "deploy",
		Short: "Apply a spec file to a Kubernetes cluster",
		Long:  deployLong,
		Args:  usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, args []string) error {
			if opts.Timeout <= 0 {
				return usageErrorf("--timeout %s: give a positive duration", opts.Timeout)
			}
			app, c, res, err := prepareForCluster(cmd.Context(), std, g.file, flags, &cluster)
			if err != nil {
				return err
			}
			opts.Out = std.out
			err = c.Deploy(cmd.Context(), res.Objects, app.Name, app.Namespace, opts)
			g.stateDirOf(app)
			auditCLI(app, "deploy", "namespace "+app.Namespace, fmt.Sprintf("%d objects", len(res.Objects)), err)
			return err
		},
	}
	flags.add(cmd)
	cluster.add(cmd)
	cmd.Flags().BoolVar(&opts.Prune, "prune", false, "delete this app's objects that the spec no longer renders")
	cmd.Flags().BoolVar(&opts.Wait, "wait", false, "wait until the workloads are ready")
	cmd.Flags().DurationVar(&opts.Timeout, "timeout", 5*time.Minute, "how long --wait waits")
	return cmd
}
