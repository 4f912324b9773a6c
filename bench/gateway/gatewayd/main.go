// Command gatewayd runs nubo's API gateway alone for the benchmark, as
// `nubo up` runs it: a spec with a plain route and a route behind a JWT
// authorizer and a throttle, both with an http integration to the
// benchmark's backend, metrics registered. It prints the gateway's URL,
// then a token the JWT route accepts (signed with a key it made, published
// in a jwksFile beside the spec), then the mesh ingress's URL, whose paths
// go to the gateway (the gateway's /svc route reaches the backend as the
// service users, through the mesh).
package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"syscall"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jwt"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/nubo-dev/nubo/internal/gateway"
	"github.com/nubo-dev/nubo/internal/mesh"
	"github.com/nubo-dev/nubo/internal/spec"
)

const specText = `
name: bench
services:
  users: {image: bench/backend:1}
gateway:
  authorizers:
    jwt: {type: jwt, issuer: https://bench.nubo/, audience: [bench], jwksFile: jwks.json, algorithms: [ES256]}
  routes:
    - {path: /, methods: [GET, POST], integration: {type: http, url: "http://%[1]s/"}}
    - {path: /svc, methods: [GET, POST], integration: {type: service, service: users, path: /}}
    - path: /auth
      methods: [GET]
      authorizer: jwt
      throttle: {rate: 1000000000, burst: 1000000000}
      integration: {type: http, url: "http://%[1]s/"}
`

func main() {
	backend := flag.String("backend", "127.0.0.1:9101", "address of the backend")
	addr := flag.String("addr", "127.0.0.1:0", "listen address")
	ingress := flag.String("ingress", "127.0.0.1:9115", "address of the mesh's ingress, in front of the gateway")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile to this file")
	memprofile := flag.String("memprofile", "", "write a profile of every allocation (sampled every 4 KiB) to this file on exit")
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
	dir, err := os.MkdirTemp("", "nubo-bench-gateway-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	token, err := writeKeys(dir)
	if err != nil {
		log.Fatal(err)
	}
	file := filepath.Join(dir, "nubo.yaml")
	if err := os.WriteFile(file, []byte(fmt.Sprintf(specText, *backend)), 0o600); err != nil {
		log.Fatal(err)
	}
	app, err := spec.Load(file)
	if err != nil {
		log.Fatal(err)
	}
	// The mesh, as `nubo up` runs it beside the gateway: service routes
	// reach users through it with the gateway's identity, and its ingress
	// hands every path to the gateway.
	reg := prometheus.NewRegistry()
	mcfg := mesh.Config{
		Namespace:   "bench",
		Services:    map[string]mesh.ServiceConfig{"users": {Port: 80}},
		Metrics:     reg,
		Ingress:     []*spec.Ingress{{Name: "bench", Paths: []*spec.IngressPath{{Path: "/", To: "gateway"}}}},
		IngressHTTP: *ingress,
	}
	eps := mesh.EndpointsFunc(func(string) []mesh.Endpoint {
		return []mesh.Endpoint{{ID: "users-0", Addr: *backend, Ready: true}}
	})
	m, err := mesh.New(mcfg, eps)
	if err != nil {
		log.Fatal(err)
	}
	gcfg := gateway.Config{App: app, Addr: *addr, Metrics: reg,
		Services: gateway.ServicesFunc(func(name string) (string, error) { return m.ServiceURL("gateway", name) })}
	// Service routes enter the mesh in process, as the engine has them do
	// (bench/gateway/run.sh drops this line to build an older nubo).
	gcfg.ServiceTransport = m.Transport("gateway")
	g, err := gateway.New(gcfg)
	if err != nil {
		log.Fatal(err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := m.Start(ctx); err != nil {
		log.Fatal(err)
	}
	if err := g.Start(ctx); err != nil {
		log.Fatal(err)
	}
	m.SetGateway(g.Handler())
	fmt.Printf("http://%s\n%s\nhttp://%s\n", g.Addr(), token, *ingress)
	<-ctx.Done()
	_ = g.Stop(context.Background())
	_ = m.Stop(context.Background())
}

// writeKeys makes an ES256 key, writes its public half as jwks.json in dir
// and returns a token signed with it, valid for a day.
func writeKeys(dir string) (string, error) {
	raw, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", err
	}
	key, err := jwk.Import(raw)
	if err != nil {
		return "", err
	}
	_ = key.Set(jwk.KeyIDKey, "bench")
	_ = key.Set(jwk.AlgorithmKey, jwa.ES256())
	pub, err := key.PublicKey()
	if err != nil {
		return "", err
	}
	set := jwk.NewSet()
	_ = set.AddKey(pub)
	data, err := json.Marshal(set)
	if err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(dir, "jwks.json"), data, 0o600); err != nil {
		return "", err
	}
	tok, err := jwt.NewBuilder().Issuer("https://bench.nubo/").Audience([]string{"bench"}).Subject("wrk").
		Expiration(time.Now().Add(24 * time.Hour)).Build()
	if err != nil {
		return "", err
	}
	signed, err := jwt.Sign(tok, jwt.WithKey(jwa.ES256(), key))
	return string(signed), err
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
