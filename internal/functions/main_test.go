package functions

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/nubo-dev/nubo/internal/nubotest"
	"github.com/nubo-dev/nubo/internal/spec"
	"github.com/nubo-dev/nubo/internal/supervisor"
)

// fnBin is the test function (testdata/fn), built once for all tests.
var fnBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "nubo-functions-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fnBin = filepath.Join(dir, "fn")
	if out, err := exec.Command("go", "build", "-o", fnBin, "./testdata/fn").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build testdata/fn: %v\n%s", err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// fixture is a running Functions for one test.
type fixture struct {
	*Functions
	dir  string
	reg  *prometheus.Registry
	out  *nubotest.Buffer
	dead *deadLetters
}

// deadLetters records what the component dead-letters.
type deadLetters struct {
	mu   sync.Mutex
	list []DeadLetter
}

func (d *deadLetters) DeadLetter(_ context.Context, dl DeadLetter) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.list = append(d.list, dl)
	return nil
}

func (d *deadLetters) all() []DeadLetter {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]DeadLetter(nil), d.list...)
}

// loadSpec writes a spec into dir, with FNBIN replaced by the test function's
// path, and loads it.
func loadSpec(t *testing.T, dir, yaml string) *spec.App {
	t.Helper()
	path := filepath.Join(dir, "nubo.yaml")
	if err := os.WriteFile(path, []byte("name: test\n"+strings.ReplaceAll(yaml, "FNBIN", fnBin)), 0o644); err != nil {
		t.Fatal(err)
	}
	app, err := spec.Load(path)
	if err != nil {
		t.Fatalf("spec: %v", err)
	}
	return app
}

// start runs the functions of a spec, stopped when the test ends. Their
// output is logged if the test fails (or always with NUBO_TEST_LOG set).
func start(t *testing.T, yaml string, mutate ...func(*Config)) *fixture {
	t.Helper()
	fx := &fixture{dir: t.TempDir(), reg: prometheus.NewRegistry(), out: &nubotest.Buffer{}, dead: &deadLetters{}}
	app := loadSpec(t, fx.dir, yaml)
	cfg := Config{
		App:     app,
		Metrics: fx.reg,
		Notify:  func(_, msg string) { fmt.Fprintf(fx.out, "nubo | %s\n", msg) },
		Lines: supervisor.LineFunc(func(service string, replica int, stream string, line []byte) {
			fmt.Fprintf(fx.out, "%s-%d | %s\n", service, replica+1, line)
		}),
		DeadLetters:     fx.dead,
		RecoveryGrace:   200 * time.Millisecond,
		StopGracePeriod: 2 * time.Second,
		StartTimeout:    15 * time.Second,
	}
	for _, m := range mutate {
		m(&cfg)
	}
	f, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	fx.Functions = f
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := f.Stop(ctx); err != nil {
			t.Errorf("Stop: %v", err)
		}
		if t.Failed() || os.Getenv("NUBO_TEST_LOG") != "" {
			t.Logf("output:\n%s", fx.out)
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := f.Start(ctx); err != nil {
		t.Fatalf("Start: %v\n%s", err, fx.out)
	}
	return fx
}

// ev makes an event of a type with JSON data (none when nil).
func ev(typ string, data any) event.Event {
	e := event.New()
	e.SetID(uuid.NewString())
	e.SetSource("test")
	e.SetType(typ)
	if data != nil {
		_ = e.SetData(event.ApplicationJSON, data)
	}
	return e
}

// answer is what the test function returns.
type answer struct {
	PID      int    `json:"pid"`
	Instance string `json:"instance"`
	Peak     int64  `json:"peak"`
	Tries    int    `json:"tries"`
	ID       string `json:"id"`
	Data     string `json:"data"`
}

func (fx *fixture) invoke(t *testing.T, name string, e event.Event) (Result, answer) {
	t.Helper()
	res, err := fx.Invoke(context.Background(), name, e)
	if err != nil {
		t.Fatalf("invoke %s with %s: %v", name, e.Type(), err)
	}
	var a answer
	if err := json.Unmarshal(res.Body, &a); err != nil {
		t.Fatalf("invoke %s: answer %q: %v", name, res.Body, err)
	}
	return res, a
}

// status returns one function's status.
func (fx *fixture) status(t *testing.T, name string) Status {
	t.Helper()
	st, err := fx.FunctionStatus(name)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// waitInstances waits until a function has n instances, all ready.
func (fx *fixture) waitInstances(t *testing.T, name string, n int) {
	t.Helper()
	nubotest.WaitFor(t, 20*time.Second, func() error {
		st := fx.status(t, name)
		ready := 0
		for _, in := range st.Instances {
			if in.State == "ready" {
				ready++
			}
		}
		if len(st.Instances) != n || ready != n {
			return fmt.Errorf("%d instances (%d ready), want %d", len(st.Instances), ready, n)
		}
		return nil
	})
}

// counter reads a counter of the registry, 0 when absent.
func (fx *fixture) counter(t *testing.T, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := fx.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metric:
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if v, ok := labels[lp.GetName()]; ok && v != lp.GetValue() {
					continue metric
				}
			}
			switch {
			case m.GetCounter() != nil:
				return m.GetCounter().GetValue()
			case m.GetGauge() != nil:
				return m.GetGauge().GetValue()
			case m.GetHistogram() != nil:
				return float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	return 0
}
