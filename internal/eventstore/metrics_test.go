package eventstore

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/nubo-dev/nubo/internal/apitype"
	"github.com/nubo-dev/nubo/internal/nubotest"
	"github.com/nubo-dev/nubo/internal/spec"
)

func TestMetrics(t *testing.T) {
	t.Parallel()
	m, h := startReadModel(t)
	b := startBroker(t, t.TempDir())
	reg := prometheus.NewRegistry()
	s, err := New(Config{App: &spec.App{Name: "shop", EventStore: projectionSpec(10, 10)}, Broker: b, Handlers: h, Metrics: reg})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Stop(context.Background()) })
	mustAppend(t, s, "user-1", apitype.ExpectNoStream, ev("a", "UserCreated", ""), ev("b", "UserRenamed", ""))
	mustAppend(t, s, "user-1", apitype.ExpectNoStream, ev("a", "UserCreated", ""), ev("b", "UserRenamed", "")) // duplicate
	_, _ = s.Append(ctx, "user-1", "7", []apitype.EventData{ev("", "UserRenamed", "")})                        // conflict
	_, _ = s.Append(ctx, "user.1", "", []apitype.EventData{ev("", "UserRenamed", "")})                         // invalid
	waitPositions(t, m, []uint64{1, 2})
	// The handler has them; the projection moves once it has answered.
	nubotest.WaitFor(t, 10*time.Second, func() error {
		if ps := s.Projections(ctx); ps[0].Position != 2 || ps[0].Lag != 0 {
			return fmt.Errorf("projection %+v", ps[0])
		}
		return nil
	})
	want := `
# HELP nubo_eventstore_appends_total Appends by result: ok, duplicate (a retried append), conflict (wrong expected version or id), invalid, error.
# TYPE nubo_eventstore_appends_total counter
nubo_eventstore_appends_total{result="conflict"} 1
nubo_eventstore_appends_total{result="duplicate"} 1
nubo_eventstore_appends_total{result="invalid"} 1
nubo_eventstore_appends_total{result="ok"} 1
# HELP nubo_eventstore_events_appended_total Events stored by appends.
# TYPE nubo_eventstore_events_appended_total counter
nubo_eventstore_events_appended_total 2
# HELP nubo_eventstore_projection_position The last global position a projection's handler took.
# TYPE nubo_eventstore_projection_position gauge
nubo_eventstore_projection_position{projection="user-summary"} 2
# HELP nubo_eventstore_projection_lag Positions between a projection and the end of the store.
# TYPE nubo_eventstore_projection_lag gauge
nubo_eventstore_projection_lag{projection="user-summary"} 0
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want),
		"nubo_eventstore_appends_total", "nubo_eventstore_events_appended_total",
		"nubo_eventstore_projection_position", "nubo_eventstore_projection_lag"); err != nil {
		t.Fatal(err)
	}
	if n := testutil.CollectAndCount(reg, "nubo_eventstore_append_duration_seconds"); n != 1 {
		t.Fatalf("append duration: %d series", n)
	}
}
