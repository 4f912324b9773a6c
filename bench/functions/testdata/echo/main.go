// Command echo is the function the benchmarks invoke: written with the Go
// SDK, it answers each event with its id and data.
package main

import (
	"context"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/nubo-dev/nubo/sdk/function"
)

func main() {
	function.Start(func(_ context.Context, e event.Event) (any, error) {
		return map[string]any{"id": e.ID(), "size": len(e.Data())}, nil
	})
}
