package engine

import (
	"context"
	"fmt"

	"github.com/nubo-dev/nubo/internal/supervisor"
)

// runBuild runs a service's build, its output lines going to line.
func runBuild(ctx context.Context, service, command, dir string, env []string, line func(string), track func(pgid int, alive bool)) error {
	return supervisor.RunBuild(ctx, fmt.Sprintf("service %q", service), command, dir, env, func(b []byte) { line(string(b)) }, track)
}
