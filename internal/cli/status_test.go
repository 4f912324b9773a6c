package cli

import (
	"context"
	"encoding/json"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/nubo-dev/nubo/internal/apitype"
	"github.com/nubo-dev/nubo/internal/console"
	"github.com/nubo-dev/nubo/internal/events"
	"github.com/nubo-dev/nubo/internal/functions"
	"github.com/nubo-dev/nubo/internal/logs"
)

// fullEngine is testEngine whose status also has functions and queues, as
// an engine running a spec with them reports.
type fullEngine struct{ *testEngine }

func (e fullEngine) Status() console.Status {
	st := e.testEngine.Status()
	st.Skipped = nil
	st.Functions = []functions.Status{
		{
			Name: "send-welcome", Min: 0, Max: 10, Concurrency: 1, IdleTimeout: "1m0s", Timeout: "30s",
			Memory: "128Mi", MemoryEnforcement: "cgroup v2",
			Instances: []functions.InstanceStatus{{ID: 1, State: "ready", PID: 5000}, {ID: 2, State: "starting"}},
			InFlight:  2, Queued: 3, Invocations: 1234, Errors: 5, ColdStarts: 7,
			LastError: "instance 2 exited: signal: killed\n(out of memory)", LastErrorTime: time.Now().Add(-8 * time.Second),
		},
		{
			Name: "resize", Min: 1, Max: 2, Memory: "64Mi", MemoryEnforcement: "not enforced: no writable cgroup",
			Instances: []functions.InstanceStatus{{ID: 1, State: "ready"}},
		},
		{Name: "tick", Max: 1, Instances: []functions.InstanceStatus{}},
	}
	st.Databases = []apitype.Database{
		{Name: "cache", Type: "redis", State: "failed", Role: "primary", Message: "redis-server is not installed: apt-get install -y redis-server"},
		{Name: "shop-db", Type: "postgres", Version: "15.18", State: "ready", Role: "primary", PID: 4100, Port: 54321, Restarts: 1,
			LastBackup: &apitype.Backup{Name: "b", Time: time.Now().Add(-3 * time.Minute)},
			Replicas:   []apitype.DatabaseReplica{{Name: "shop-db-replica-1", State: "streaming", PID: 4200, Port: 54322}}},
	}
	st.Queues = []events.QueueStatus{
		{Name: "user-events", Type: "standard", Messages: 12, Waiting: 9, InFlight: 3, DeadLetterQueue: "user-events-dlq"},
		{Name: "user-events-dlq", Type: "fifo", Messages: 1, Waiting: 1},
	}
	st.EventStore = &apitype.EventStoreStatus{Streams: 3, Events: 40, LastPosition: 40, Projections: []apitype.Projection{
		{Name: "customer-stats", Handler: "service:users/projections/customer-stats", State: "failing", Position: 12, Checkpoint: 10, Lag: 28, Failures: 4, LastError: "POST service:users/projections/customer-stats: 500"},
	}}
	st.Broker = &apitype.BrokerHealth{State: "degraded", Since: time.Now().Add(-5 * time.Second),
		Reason: "Filestore [ORDERS] Critical write error: open 2.blk: too many open files"}
	return st
}

func startFullEngine(t *testing.T) string {
	t.Helper()
	e := fullEngine{&testEngine{logs: logs.New(0)}}
	srv, err := console.New(console.Config{Addr: "127.0.0.1:0", Backend: e, Logs: e.logs})
	if err != nil {
		t.Fatal(err)
	}
	e.srv = srv
	if err := srv.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Stop(context.Background()) })
	return srv.Addr()
}

func TestStatusFunctionsAndQueues(t *testing.T) {
	t.Parallel()
	addr := startFullEngine(t)
	r := runInProcess(t, "status", "--addr", addr)
	if r.code != 0 {
		t.Fatalf("status:\n%s", r)
	}
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`(?m)^SERVICE +REPLICA +STATE`),
		regexp.MustCompile(`(?m)^  broker DEGRADED for [56]s: Filestore \[ORDERS\] Critical write error: open 2.blk: too many open files \(it restarts itself`),
		regexp.MustCompile(`(?m)^FUNCTION +INSTANCES +IN FLIGHT +QUEUED +INVOCATIONS +ERRORS +COLD STARTS +MEMORY$`),
		regexp.MustCompile(`(?m)^send-welcome +2/0\.\.10 +2 +3 +1234 +5 +7 +128Mi \(cgroup v2\)$`),
		regexp.MustCompile(`(?m)^resize +1/1\.\.2 +0 +0 +0 +0 +0 +64Mi \(not enforced\)$`),
		regexp.MustCompile(`(?m)^tick +0/0\.\.1 +0 +0 +0 +0 +0 +-$`),
		regexp.MustCompile(`(?m)^  send-welcome: instance 2 exited: signal: killed \(out of memory\) \([89]s ago\)$`),
		regexp.MustCompile(`(?m)^  resize: memory 64Mi not enforced: no writable cgroup$`),
		regexp.MustCompile(`(?m)^DATABASE +TYPE +VERSION +ROLE +STATE +PID +PORT +RESTARTS +LAST BACKUP$`),
		regexp.MustCompile(`(?m)^cache +redis +- +primary +failed +- +- +0 +-$`),
		regexp.MustCompile(`(?m)^shop-db +postgres +15\.18 +primary +ready +4100 +54321 +1 +3m(0s)? ago$`),
		regexp.MustCompile(`(?m)^  cache: redis-server is not installed: apt-get install -y redis-server$`),
		regexp.MustCompile(`(?m)^  shop-db: replica streaming, pid 4200, port 54322, 0 restarts$`),
		regexp.MustCompile(`(?m)^QUEUE +TYPE +MESSAGES +WAITING +IN FLIGHT +DEAD LETTERS TO$`),
		regexp.MustCompile(`(?m)^user-events +standard +12 +9 +3 +user-events-dlq$`),
		regexp.MustCompile(`(?m)^user-events-dlq +fifo +1 +1 +0 +-$`),
		regexp.MustCompile(`(?m)^event store: 3 streams, 40 events, last position 40$`),
		regexp.MustCompile(`(?m)^PROJECTION +HANDLER +STATE +POSITION +CHECKPOINT +LAG$`),
		regexp.MustCompile(`(?m)^customer-stats +service:users/projections/customer-stats +failing +12 +10 +28$`),
		regexp.MustCompile(`(?m)^  customer-stats: 4 failures in a row: POST service:users/projections/customer-stats: 500$`),
	} {
		if !want.MatchString(r.stdout) {
			t.Errorf("status output does not match %s:\n%s", want, r.stdout)
		}
	}
	// Services, then functions, then queues; nothing skipped, so no such
	// section.
	if s, f, q := strings.Index(r.stdout, "SERVICE "), strings.Index(r.stdout, "FUNCTION "), strings.Index(r.stdout, "QUEUE "); s >= f || f >= q {
		t.Errorf("tables out of order (services %d, functions %d, queues %d):\n%s", s, f, q, r.stdout)
	}
	if strings.Contains(r.stdout, "not run by nubo up") {
		t.Errorf("a skipped section without skipped parts:\n%s", r.stdout)
	}

	r = runInProcess(t, "status", "--addr", addr, "-o", "json")
	var st console.Status
	if err := json.Unmarshal([]byte(r.stdout), &st); err != nil || r.code != 0 {
		t.Fatalf("status -o json: %v\n%s", err, r)
	}
	if len(st.Functions) != 3 || st.Functions[0].ColdStarts != 7 || len(st.Queues) != 2 || st.Queues[0].DeadLetterQueue != "user-events-dlq" {
		t.Errorf("status document: functions %+v, queues %+v", st.Functions, st.Queues)
	}
}

// TestStatusWithoutFunctionsOrQueues: an engine without them shows no
// empty tables.
func TestStatusWithoutFunctionsOrQueues(t *testing.T) {
	t.Parallel()
	e := startTestEngine(t)
	r := runInProcess(t, "status", "--addr", e.addr)
	if r.code != 0 || strings.Contains(r.stdout, "FUNCTION") || strings.Contains(r.stdout, "QUEUE") {
		t.Errorf("status:\n%s", r)
	}
}
