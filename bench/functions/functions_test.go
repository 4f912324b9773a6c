// Package functions_test benchmarks nubo's functions component against
// calling the same function process directly:
//
//	go test -run X -bench . -benchtime 20x ./bench/functions/   # cold starts: 20
//	go test -run X -bench 'Warm|Throughput' ./bench/functions/
//
// BenchmarkColdStart reports the p50 of the cold starts (process start until
// the port accepts) and of the first invocation's whole latency.
// BenchmarkWarm compares a warm invocation through Invoke, through the
// platform API over HTTP, and a direct POST of the same CloudEvent to the
// instance's port, reporting p50 and p99. BenchmarkThroughput runs 50
// callers at once through Invoke and directly. bench/README.md has figures.
package functions_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/binding"
	"github.com/cloudevents/sdk-go/v2/event"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"

	"github.com/nubo-dev/nubo/internal/functions"
	"github.com/nubo-dev/nubo/internal/spec"
)

// echoBin is testdata/echo, built once.
var echoBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "nubo-bench-functions")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	echoBin = filepath.Join(dir, "echo")
	if out, err := exec.Command("go", "build", "-o", echoBin, "./testdata/echo").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build testdata/echo: %v\n%s", err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// startFunctions runs the echo function with the given pool settings.
func startFunctions(b *testing.B, pool string) *functions.Functions {
	b.Helper()
	dir := b.TempDir()
	path := filepath.Join(dir, "nubo.yaml")
	yaml := fmt.Sprintf("name: bench\nfunctions:\n  echo:\n    run: %s\n    timeout: 30s\n%s", echoBin, pool)
	if err := os.WriteFile(path, []byte(yaml), 0o644); err != nil {
		b.Fatal(err)
	}
	app, err := spec.Load(path)
	if err != nil {
		b.Fatal(err)
	}
	f, err := functions.New(functions.Config{App: app, QueueDepth: 1000})
	if err != nil {
		b.Fatal(err)
	}
	if err := f.Start(context.Background()); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		f.Stop(ctx)
	})
	return f
}

func newEvent() event.Event {
	e := event.New()
	e.SetID("bench-1")
	e.SetSource("bench")
	e.SetType("bench.echo")
	e.SetTime(time.Now())
	_ = e.SetData(event.ApplicationJSON, map[string]string{"hello": "world"})
	return e
}

// BenchmarkColdStart starts the function from zero b.N times (run it with
// -benchtime 20x): a fresh pool each time, whose first invocation waits for
// the process to listen.
func BenchmarkColdStart(b *testing.B) {
	var inits, firsts []time.Duration
	e := newEvent()
	for b.Loop() {
		b.StopTimer()
		f := startFunctions(b, "    scaling: {min: 0}\n")
		b.StartTimer()
		start := time.Now()
		res, err := f.Invoke(context.Background(), "echo", e)
		first := time.Since(start)
		b.StopTimer()
		if err != nil {
			b.Fatal(err)
		}
		if !res.ColdStart {
			b.Fatal("the first invocation of a pool at zero was not a cold start")
		}
		inits, firsts = append(inits, res.InitDuration), append(firsts, first)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		f.Stop(ctx)
		cancel()
		b.StartTimer()
	}
	b.ReportMetric(ms(percentile(inits, 50)), "cold-p50-ms")
	b.ReportMetric(ms(percentile(inits, 100)), "cold-max-ms")
	b.ReportMetric(ms(percentile(firsts, 50)), "first-invoke-p50-ms")
}

// BenchmarkWarm compares one warm invocation at a time: through Invoke,
// through the platform API over loopback HTTP, and directly to the
// instance's port with the same binary-mode request.
func BenchmarkWarm(b *testing.B) {
	f := startFunctions(b, "    scaling: {min: 1}\n")
	e := newEvent()
	st, err := f.FunctionStatus("echo")
	if err != nil || len(st.Instances) != 1 {
		b.Fatalf("status %+v, %v", st, err)
	}
	instanceURL := fmt.Sprintf("http://127.0.0.1:%d/", st.Instances[0].Port)
	api := httptest.NewServer(f.Handler())
	b.Cleanup(api.Close)

	b.Run("direct", func(b *testing.B) {
		client := directClient()
		measure(b, func() error { return post(client, instanceURL, e) })
	})
	b.Run("invoke", func(b *testing.B) {
		measure(b, func() error {
			_, err := f.Invoke(context.Background(), "echo", e)
			return err
		})
	})
	b.Run("api", func(b *testing.B) {
		client := directClient()
		measure(b, func() error { return post(client, api.URL+"/v1/functions/echo/invoke", e) })
	})
}

// BenchmarkThroughput runs 50 callers at once, through Invoke (one instance
// taking 50 invocations at once) and directly.
func BenchmarkThroughput(b *testing.B) {
	const callers = 50
	f := startFunctions(b, "    concurrency: 50\n    scaling: {min: 1, max: 1}\n")
	e := newEvent()
	st, _ := f.FunctionStatus("echo")
	instanceURL := fmt.Sprintf("http://127.0.0.1:%d/", st.Instances[0].Port)
	parallel := func(b *testing.B, call func() error) {
		b.SetParallelism((callers + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0))
		start := time.Now()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if err := call(); err != nil {
					b.Error(err)
					return
				}
			}
		})
		b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "invocations/s")
	}
	b.Run("direct", func(b *testing.B) {
		client := directClient()
		parallel(b, func() error { return post(client, instanceURL, e) })
	})
	b.Run("invoke", func(b *testing.B) {
		parallel(b, func() error {
			_, err := f.Invoke(context.Background(), "echo", e)
			return err
		})
	})
}

// directClient calls a function as the engine does: keep-alive, no proxy.
func directClient() *http.Client {
	return &http.Client{Transport: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 64, DisableCompression: true}}
}

// post sends e in binary mode and reads the whole answer.
func post(client *http.Client, url string, e event.Event) error {
	req, err := http.NewRequest(http.MethodPost, url, nil)
	if err != nil {
		return err
	}
	if err := cehttp.WriteRequest(context.Background(), binding.ToMessage(&e), req); err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("POST %s: %s", url, resp.Status)
	}
	return nil
}

// measure runs call b.N times, one at a time, and reports its p50 and p99.
func measure(b *testing.B, call func() error) {
	lat := make([]time.Duration, 0, b.N)
	for b.Loop() {
		start := time.Now()
		if err := call(); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(start))
	}
	b.ReportMetric(us(percentile(lat, 50)), "p50-µs")
	b.ReportMetric(us(percentile(lat, 99)), "p99-µs")
}

func percentile(d []time.Duration, p int) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	i := (len(s)*p + 99) / 100
	return s[min(max(i-1, 0), len(s)-1)]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
func us(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }
