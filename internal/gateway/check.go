package gateway

import (
	"errors"

	"github.com/nubo-dev/nubo/internal/spec"
)

// Check compiles app as Update would, without applying it: the first phase
// of the engine's two-phase reload.
func (g *Gateway) Check(app *spec.App) error {
	if app == nil {
		return errors.New("gateway: no spec")
	}
	_, err := g.compile(app)
	return err
}
