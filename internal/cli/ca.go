package cli

import (
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/nubo-dev/nubo/internal/engine"
	"github.com/nubo-dev/nubo/internal/mesh"
	"github.com/nubo-dev/nubo/internal/spec"
)

func newCACmd(std stdio, g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "ca",
		Short: "Print the local certificate authority's certificate path and how to trust it",
		Long: `Ca prints the path of the certificate of nubo's local CA, which signs the
ingress's certificates (ingress[].tls). The CA is created in the state directory
by the first nubo up that serves TLS; trust it to open https://shop.localhost
without warnings.`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, args []string) error {
			app, err := spec.Load(g.file)
			if app != nil {
				g.stateDirOf(app)
			}
			if err != nil {
				return reportLoadError(std.err, g.file, err)
			}
			path := mesh.CACertPath(engine.CADir(app))
			if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
				return fmt.Errorf("%s does not exist yet: nubo up creates it when an ingress has tls: true", path)
			}
			fmt.Fprintln(std.out, path)
			fmt.Fprintf(std.err, `Trust it:
  Debian, Ubuntu: sudo cp %[1]s /usr/local/share/ca-certificates/nubo-local-ca.crt && sudo update-ca-certificates
  macOS:          sudo security add-trusted-cert -d -r trustRoot -k /Library/Keychains/System.keychain %[1]s
  curl:           curl --cacert %[1]s https://shop.localhost:8443/
  Firefox and Chrome keep their own stores: import it in the browser's certificate settings.
`, path)
			return nil
		},
	}
}
