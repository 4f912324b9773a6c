package cli

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/nubo-dev/nubo/internal/gateway"
)

const openAPILong = `OpenAPI prints the spec's API gateway as an OpenAPI 3.1 document: each
stage as a server, each route and method as an operation with its path,
header and query parameters, its request model and its answers (401 and 403
with an authorizer, 429 with a throttle, 400 with validation, the statuses
of statusCodes), the models as schemas and the authorizers as security
schemes. It reads only the spec file: nothing needs to run.`

func newOpenAPICmd(std stdio, g *globals) *cobra.Command {
	var format, server string
	cmd := &cobra.Command{
		Use:   "openapi",
		Short: "Print the API gateway as an OpenAPI 3.1 document",
		Long:  openAPILong,
		Example: `  nubo openapi > openapi.yaml
  nubo openapi -o json --server http://127.0.0.1:8000 > openapi.json`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, args []string) error {
			if format != "yaml" && format != "json" {
				return usageErrorf("--output %q: use yaml or json", format)
			}
			if server != "" && !strings.HasPrefix(server, "http://") && !strings.HasPrefix(server, "https://") {
				return usageErrorf("--server %q: want an http(s) URL", server)
			}
			app, err := loadForKubernetes(std.err, g.file)
			if err != nil {
				return err
			}
			if app.Gateway == nil {
				return fmt.Errorf("%s has no gateway section: nothing to describe", g.file)
			}
			doc, err := gateway.OpenAPI(app, gateway.OpenAPIOptions{Server: server})
			if err != nil {
				return err
			}
			var out []byte
			if format == "json" {
				out, err = doc.JSON()
			} else {
				out, err = doc.YAML()
			}
			if err != nil {
				return err
			}
			_, err = std.out.Write(out)
			return err
		},
	}
	cmd.Flags().StringVarP(&format, "output", "o", "yaml", "output format: yaml or json")
	cmd.Flags().StringVar(&server, "server", "", "base URL of the gateway (default: servers are relative paths)")
	return cmd
}
