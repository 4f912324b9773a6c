package cli

import (
	"encoding/json"
	"io"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/spf13/cobra"

	"github.com/nubo-dev/nubo/internal/console"
	"github.com/nubo-dev/nubo/internal/gateway"
	"github.com/nubo-dev/nubo/internal/mcpserver"
	"github.com/nubo-dev/nubo/internal/spec"
)

const mcpLong = `Mcp serves the Model Context Protocol over stdin and stdout, for AI agents and
editors: tools to read the running engine (status, logs, query, alerts, slos,
dead_letters) and to act on it (restart, publish, invoke, redrive), and the
spec and the gateway's OpenAPI document as resources. It talks to the engine
through the same API as the other commands, found the same way (--addr,
--state, -f). docs/mcp.md shows how to configure common clients.`

func newMCPCmd(std stdio, g *globals) *cobra.Command {
	var addr string
	cmd := &cobra.Command{
		Use:   "mcp",
		Short: "Serve the Model Context Protocol over stdio, for AI agents",
		Long:  mcpLong,
		Args:  usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, args []string) error {
			t, err := findEngine(g, addr)
			if err != nil {
				return err
			}
			s := mcpserver.New(mcpserver.Config{
				Engine:   t.addr,
				Token:    func() string { return console.ReadToken(t.stateDir) },
				SpecFile: g.file,
				OpenAPI: func() ([]byte, error) {
					app, err := spec.Load(g.file)
					if err != nil {
						return nil, err
					}
					doc, err := gateway.OpenAPI(app, gateway.OpenAPIOptions{})
					if err != nil {
						return nil, err
					}
					return json.MarshalIndent(doc, "", "  ")
				},
				Version: buildVersion().Version,
			})
			return s.Run(cmd.Context(), &mcp.IOTransport{Reader: io.NopCloser(std.in), Writer: nopWriteCloser{std.out}})
		},
	}
	addrFlag(cmd, &addr)
	return cmd
}

type nopWriteCloser struct{ io.Writer }

func (nopWriteCloser) Close() error { return nil }
