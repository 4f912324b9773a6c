package hopspans

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nubo-dev/nubo/internal/mesh"
	"github.com/nubo-dev/nubo/internal/nubotest"
	"github.com/nubo-dev/nubo/internal/tracing"
)

// TestMeshSpanEventsAndDenial stores a mesh hop that was retried after an
// ejection and one a policy denied, and reads them back as OpenTelemetry
// span events and an error naming the policy.
func TestMeshSpanEventsAndDenial(t *testing.T) {
	st, err := tracing.OpenStore(tracing.StoreConfig{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	tr := tracing.NewTracer(nil)
	tr.SetStore(st)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { tr.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()

	now := time.Now()
	retried := mesh.Span{TraceID: [16]byte{1}, SpanID: [8]byte{1}, Name: "users:80/*", Start: now, End: now.Add(time.Millisecond),
		Source: "orders", Destination: "users", Method: "GET", Path: "/", Status: 200, Flags: "-", Upstream: "127.0.0.1:2",
		Events: []mesh.SpanEvent{
			{Time: now, Name: "outlier ejection", Replica: "127.0.0.1:1", Attempt: 1},
			{Time: now, Name: "retry", Replica: "127.0.0.1:1", Attempt: 1, Status: 503},
			{Time: now, Name: "retry", Replica: "127.0.0.1:3", Attempt: 2, Reason: "connect-failure"},
		}}
	denied := mesh.Span{TraceID: [16]byte{2}, SpanID: [8]byte{2}, Name: "payments:80/*", Start: now, End: now,
		Source: "orders", Destination: "payments", Method: "GET", Path: "/", Status: 403, Flags: "-", Denied: "no-orders-payments"}
	mt := MeshTracer(tr)
	mt.ExportSpan(retried)
	mt.ExportSpan(denied)

	get := func(id [16]byte) tracing.Span {
		var sp []tracing.Span
		nubotest.WaitFor(t, 10*time.Second, func() error {
			sp, err = st.Trace(tracing.TraceID(id))
			if err != nil || len(sp) != 1 {
				return fmt.Errorf("trace: %d spans, %v", len(sp), err)
			}
			return nil
		})
		return sp[0]
	}
	attr := func(attrs []tracing.Attr, k string) string {
		for _, a := range attrs {
			if a.Key == k {
				return a.Value
			}
		}
		return ""
	}
	r := get(retried.TraceID)
	if r.Status != tracing.StatusUnset || attr(r.Attrs, "http.request.resend_count") != "2" || len(r.Events) != 3 {
		t.Fatalf("retried span %+v", r)
	}
	if e := r.Events[0]; e.Name != "outlier ejection" || attr(e.Attrs, "network.peer.address") != "127.0.0.1:1" {
		t.Errorf("ejection event %+v", e)
	}
	if e := r.Events[1]; e.Name != "retry" || attr(e.Attrs, "http.response.status_code") != "503" || attr(e.Attrs, "nubo.mesh.attempt") != "1" {
		t.Errorf("first retry event %+v", e)
	}
	if e := r.Events[2]; attr(e.Attrs, "error.type") != "connect-failure" || attr(e.Attrs, "http.response.status_code") != "" {
		t.Errorf("second retry event %+v", e)
	}
	d := get(denied.TraceID)
	if d.Status != tracing.StatusError || d.StatusMessage != "RBAC: access denied by no-orders-payments" ||
		attr(d.Attrs, "nubo.mesh.denied_by") != "no-orders-payments" || attr(d.Attrs, "error.type") != "policy_denied" {
		t.Errorf("denied span %+v", d)
	}
}
