package cli

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/nubo-dev/nubo/internal/audit"
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
			g.stateDirOf(app)
			target, detail := "namespace "+app.Namespace, fmt.Sprintf("%d objects", len(res.Objects))
			// The deploy is recorded before it applies anything, so that
			// every object can carry its record; its result follows.
			started, aerr := audit.Open(app.StatePath()).Append(audit.Record{Actor: audit.Actor("cli"), Action: "deploy",
				Target: target, Detail: detail, Result: audit.Started}, nil)
			if aerr != nil {
				fmt.Fprintf(std.err, "nubo: warning: the audit trail was not written: %v\n", aerr)
			} else {
				opts.Annotations = map[string]string{
					k8s.AnnotationAudit:      fmt.Sprintf("%d:%s", started.Seq, started.Hash),
					k8s.AnnotationDeployedBy: started.Actor,
					k8s.AnnotationDeployedAt: started.Time.Format(time.RFC3339),
				}
				detail += fmt.Sprintf(" (started as record %d)", started.Seq)
			}
			err = c.Deploy(cmd.Context(), res.Objects, app.Name, app.Namespace, opts)
			auditCLI(app, "deploy", target, detail, err)
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
