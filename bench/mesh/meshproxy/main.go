// Command meshproxy runs nubo's mesh alone for the benchmark: one service
// whose single replica is the benchmark's backend, the Istio metrics on and
// one allow policy, as `nubo up` would run it. wrk does not speak to HTTP
// proxies, so it calls the service through the caller's service URL
// (NUBO_SERVICE_USERS_URL), which takes the same path through the mesh as
// http://users/ through HTTP_PROXY.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"syscall"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/nubo-dev/nubo/internal/mesh"
	"github.com/nubo-dev/nubo/internal/spec"
	"github.com/nubo-dev/nubo/internal/tracing"
	"github.com/nubo-dev/nubo/internal/tracing/hopspans"
)

func main() {
	backend := flag.String("backend", "127.0.0.1:9101", "address of the replica")
	ingress := flag.String("ingress", "127.0.0.1:9104", "address of the ingress, in front of the replica")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile to this file")
	memprofile := flag.String("memprofile", "", "write a profile of every allocation (sampled every 4 KiB) to this file on exit")
	traceDir := flag.String("trace-dir", "", "record a span per request (sample rate 1) into a trace store in this folder")
	flag.Parse()
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			log.Fatal(err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			log.Fatal(err)
		}
		defer pprof.StopCPUProfile()
	}
	if *memprofile != "" {
		runtime.MemProfileRate = 4096
		defer writeMemProfile(*memprofile)
	}
	cfg := mesh.Config{
		Namespace: "bench",
		Services:  map[string]mesh.ServiceConfig{"users": {Port: 80}},
		Metrics:   prometheus.NewRegistry(),
	}
	cfg.Mesh.Policies = []*spec.Policy{{
		Name: "wrk-reads-users", To: "users", Action: "allow",
		From: spec.PolicySource{Principals: []string{"wrk", "ingress"}},
		When: []*spec.PolicyCondition{{Key: "request.method", Values: []string{"GET", "POST"}}},
	}}
	// The ingress in front of the same service, for the ingress runs.
	cfg.Ingress = []*spec.Ingress{{Name: "bench", Paths: []*spec.IngressPath{{Path: "/", To: "service:users"}}}}
	cfg.IngressHTTP = *ingress
	eps := mesh.EndpointsFunc(func(string) []mesh.Endpoint {
		return []mesh.Endpoint{{ID: "users-0", Addr: *backend, Ready: true}}
	})
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if *traceDir != "" {
		st, err := tracing.OpenStore(tracing.StoreConfig{Dir: *traceDir})
		if err != nil {
			log.Fatal(err)
		}
		defer st.Close()
		t := tracing.NewTracer(nil)
		t.SetStore(st)
		go t.Run(ctx)
		cfg.Tracer = hopspans.MeshTracer(t)
		defer func() { log.Printf("spans stored %d, dropped %d", st.Stats().Spans, t.Dropped()) }()
	}
	m, err := mesh.New(cfg, eps)
	if err != nil {
		log.Fatal(err)
	}
	if err := m.Start(ctx); err != nil {
		log.Fatal(err)
	}
	u, err := m.ServiceURL("wrk", "users")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(u)
	fmt.Println("http://" + *ingress)
	<-ctx.Done()
	_ = m.Stop(context.Background())
}

// writeMemProfile writes the allocations made since the start (go tool
// pprof -sample_index=alloc_objects) to file.
func writeMemProfile(file string) {
	f, err := os.Create(file)
	if err != nil {
		log.Print(err)
		return
	}
	defer f.Close()
	if err := pprof.Lookup("allocs").WriteTo(f, 0); err != nil {
		log.Print(err)
	}
}
