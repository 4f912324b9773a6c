// Command nubo runs a whole cloud-native system from one file, nubo.yaml.
// The command line lives in internal/cli; main only wires it to the process.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/nubo-dev/nubo/internal/cli"
)

func main() {
	// The first interrupt cancels the context so that commands stop cleanly;
	// after it the default handling is back, so a second one kills nubo.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		<-ctx.Done()
		stop()
	}()
	code := cli.Run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
