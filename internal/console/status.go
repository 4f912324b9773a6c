package console

import (
	"context"
	"errors"

	"github.com/nubo-dev/nubo/internal/apitype"
)

// Backend is what the admin API needs from a running engine. internal/engine
// implements it; the console only reads and asks, it never owns the parts.
type Backend interface {
	// Status returns a snapshot of the running system.
	Status() Status
	// RestartService replaces every replica of the named service, one by one
	// as a roll does, and returns once the restart has begun. An unknown
	// name gives an error wrapping ErrNotFound, which the API answers with
	// 404.
	RestartService(ctx context.Context, name string) error
	// Shutdown asks the engine to stop and returns at once; the engine stops
	// the console last, so the answer to the request still goes out.
	Shutdown()
}

// ErrNotFound is wrapped by a Backend's error when the thing named does not
// exist.
var ErrNotFound = errors.New("not found")

// Status is apitype.Status: the wire type lives there, so that the API
// changes only where it is declared.
type Status = apitype.Status

// ServiceStatus is apitype.Service: the wire type lives there, so that the API
// changes only where it is declared.
type ServiceStatus = apitype.Service

// KindService is the Kind of a spec service.
const KindService = apitype.KindService

// ScalingStatus is apitype.Scaling: the wire type lives there, so that the API
// changes only where it is declared.
type ScalingStatus = apitype.Scaling

// Skipped is apitype.Skipped: the wire type lives there, so that the API
// changes only where it is declared.
type Skipped = apitype.Skipped
