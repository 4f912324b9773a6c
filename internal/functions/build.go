package functions

import (
	"context"
	"fmt"

	"github.com/nubo-dev/nubo/internal/supervisor"
)

// BuildStream is the stream name of build output lines passed to
// Config.Lines when the component runs builds itself.
const BuildStream = "build"

// runBuild runs a function's build through Config.Build, or itself.
func (f *Functions) runBuild(ctx context.Context, name, command, dir string, env []string) error {
	if f.cfg.Build != nil {
		return f.cfg.Build(ctx, name, command, dir, env)
	}
	return f.build(ctx, name, command, dir, env)
}

// build runs command through sh -c in dir, streaming its output lines to
// Config.Lines (replica -1, stream "build").
func (f *Functions) build(ctx context.Context, name, command, dir string, env []string) error {
	return supervisor.RunBuild(ctx, fmt.Sprintf("function %q", name), command, dir, env, func(l []byte) {
		if f.cfg.Lines != nil {
			f.cfg.Lines.Line(name, -1, BuildStream, l)
		}
	}, f.cfg.Track)
}
