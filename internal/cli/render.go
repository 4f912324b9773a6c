package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"github.com/nubo-dev/nubo/internal/k8s"
	"github.com/nubo-dev/nubo/internal/secrets"
	"github.com/nubo-dev/nubo/internal/spec"
)

const renderLong = `Render turns a spec file into Kubernetes manifests: Deployments, Services,
autoscalers, Istio, Knative, NATS JetStream controller, CloudNativePG and
Prometheus Operator objects, Grafana dashboards, and nubo's own gateway,
event dispatcher and event store as Deployments of the nubo image. The
output is deterministic: the same file gives the same bytes.

Without -o the manifests are one YAML stream on stdout. With -o DIR they are
written to DIR, one file per group of kinds, numbered in the order
kubectl apply -f DIR should take them; files of groups no longer rendered
are removed.

Secrets are rendered without values: nubo deploy fills them in the cluster
from the sources nubo up reads. ${env.NAME} is read from the environment of
nubo render. What does not carry over to Kubernetes exactly is reported on
stderr as a warning naming the field.`

// k8sFlags are the flags render, diff and deploy share.
type k8sFlags struct {
	image, natsURL, gatewayClass string
}

func (f *k8sFlags) add(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.image, "image", defaultImage(), "the nubo image of the gateway, dispatcher and event store")
	cmd.Flags().StringVar(&f.natsURL, "nats-url", k8s.DefaultNATSURL, "the NATS server nubo's components use in the cluster")
	cmd.Flags().StringVar(&f.gatewayClass, "gateway-class", k8s.DefaultGatewayClass, "the GatewayClass of the Gateway, with kubernetes.ingress: gateway-api")
}

func (f *k8sFlags) options() k8s.Options {
	return k8s.Options{Image: f.image, NATSURL: f.natsURL, GatewayClass: f.gatewayClass, Getenv: os.Getenv}
}

// defaultImage is the nubo image of this nubo's version, or latest for a
// development build.
func defaultImage() string {
	// A release is a tag such as v1.2.3; pseudo-versions and pre-releases
	// have a "-", development builds say (devel).
	if v := buildVersion().Version; strings.HasPrefix(v, "v") && !strings.Contains(v, "-") {
		return "ghcr.io/nubo-dev/nubo:" + v
	}
	return k8s.DefaultImage
}

func newRenderCmd(std stdio, g *globals) *cobra.Command {
	var dir string
	var flags k8sFlags
	cmd := &cobra.Command{
		Use:   "render",
		Short: "Turn a spec file into Kubernetes manifests",
		Long:  renderLong,
		Args:  usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, args []string) error {
			app, err := loadForKubernetes(std.err, g.file)
			if err != nil {
				return err
			}
			res, err := k8s.Render(app, flags.options())
			if err != nil {
				return err
			}
			writeRenderWarnings(std.err, app, res.Warnings)
			if dir == "" {
				return k8s.WriteYAML(std.out, res.Objects)
			}
			if err := k8s.WriteDir(dir, res.Objects); err != nil {
				return err
			}
			files, err := k8s.Files(res.Objects)
			if err != nil {
				return err
			}
			names := make([]string, 0, len(files))
			for n := range files {
				names = append(names, n)
			}
			sort.Strings(names)
			for _, n := range names {
				fmt.Fprintln(std.out, filepath.Join(dir, n))
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&dir, "out", "o", "", "write the manifests to this folder instead of stdout")
	flags.add(cmd)
	return cmd
}

// loadForKubernetes loads a spec as nubo up does, printing its warnings.
func loadForKubernetes(w io.Writer, file string) (*spec.App, error) {
	app, err := spec.Load(file)
	if err != nil {
		return nil, reportLoadError(w, file, err)
	}
	for _, d := range app.Warnings() {
		fmt.Fprintln(w, d)
	}
	return app, nil
}

// writeRenderWarnings prints the rendering's warnings as validate prints
// diagnostics: at the place in the spec they are about.
func writeRenderWarnings(w io.Writer, app *spec.App, warnings []k8s.Warning) {
	for _, wr := range warnings {
		pos := app.Pos(wr.Path)
		loc := pos.File
		if pos.Line > 0 {
			loc = fmt.Sprintf("%s:%d:%d", pos.File, pos.Line, pos.Col)
		}
		fmt.Fprintf(w, "%s: %s: warning: %s\n", loc, wr.Path, wr.Message)
	}
}

// resolveSecrets finds every secret's values as nubo up does: the
// environment, the dotenv files, then the encrypted local store.
func resolveSecrets(app *spec.App) (secrets.Values, error) {
	if len(app.Secrets) == 0 {
		return secrets.Values{}, nil
	}
	id, err := secrets.DefaultIdentityPath()
	if err != nil {
		return nil, err
	}
	store, err := secrets.OpenStore(app.StatePath(), id)
	if err != nil {
		return nil, err
	}
	vals, err := secrets.Resolve(app, store, os.Getenv)
	if err != nil {
		return nil, fmt.Errorf("%w\n(nubo deploy pushes the values nubo up would use; none is missing there)", err)
	}
	return vals, nil
}

// clusterFlags are the flags of the commands that talk to a cluster.
type clusterFlags struct {
	kubeconfig, context string
}

func (f *clusterFlags) add(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.kubeconfig, "kubeconfig", "", "the kubeconfig file (default: $KUBECONFIG or ~/.kube/config)")
	cmd.Flags().StringVar(&f.context, "context", "", "the kubeconfig context (default: its current context)")
}

func (f *clusterFlags) connect() (*k8s.Cluster, error) {
	return k8s.Connect(f.kubeconfig, f.context)
}

// prepareForCluster is what diff and deploy share: load the spec, resolve its
// secrets from the sources nubo up uses, connect, render against the cluster,
// and print the render's warnings.
func prepareForCluster(ctx context.Context, std stdio, file string, flags k8sFlags, cluster *clusterFlags) (*spec.App, *k8s.Cluster, *k8s.Result, error) {
	app, err := loadForKubernetes(std.err, file)
	if err != nil {
		return nil, nil, nil, err
	}
	vals, err := resolveSecrets(app)
	if err != nil {
		return nil, nil, nil, err
	}
	c, err := cluster.connect()
	if err != nil {
		return nil, nil, nil, err
	}
	opts := flags.options()
	opts.Secrets = vals
	res, err := c.Prepare(ctx, app, opts)
	if err != nil {
		return nil, nil, nil, err
	}
	writeRenderWarnings(std.err, app, res.Warnings)
	return app, c, res, nil
}
