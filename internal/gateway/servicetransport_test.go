package gateway

import (
	"net/http"
	"sync/atomic"
	"testing"
)

// takingTransport is a service transport like the mesh's in-process one:
// it counts which of its round trips the gateway used.
type takingTransport struct {
	plain, taking atomic.Int32
}

func (t *takingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	t.plain.Add(1)
	return http.DefaultTransport.RoundTrip(r)
}

func (t *takingTransport) RoundTripTakingHeader(r *http.Request) (*http.Response, error) {
	t.taking.Add(1)
	return http.DefaultTransport.RoundTrip(r)
}

// TestServiceTransportTakesHeader: a service integration hands its
// request's header map to a transport that can take it, with the headers
// the backend must see; http integrations do not use the service
// transport.
func TestServiceTransportTakesHeader(t *testing.T) {
	t.Parallel()
	backend := newEchoBackend(t)
	tr := &takingTransport{}
	tg := startGateway(t, `
name: shop
services:
  catalog: {image: catalog:1}
gateway:
  routes:
    - {path: /svc, methods: [GET], integration: {type: service, service: catalog}}
    - {path: /http, methods: [GET], integration: {type: http, url: "`+backend.URL+`/"}}
`, nil, func(c *Config) {
		c.Services = servicesOf(map[string]string{"catalog": backend.URL})
		c.ServiceTransport = tr
	})
	r := call(t, "GET", tg.url+"/svc", "", "X-Keep", "1", "Connection", "X-Hop", "X-Hop", "2")
	if r.status != http.StatusOK {
		t.Fatalf("service route: %d %s", r.status, r.body)
	}
	h := http.Header(r.seen(t).Headers)
	if h.Get("X-Keep") != "1" || h.Get("X-Hop") != "" || h.Get("X-Forwarded-For") == "" {
		t.Errorf("the backend saw %v", h)
	}
	if r := call(t, "GET", tg.url+"/http", ""); r.status != http.StatusOK {
		t.Fatalf("http route: %d %s", r.status, r.body)
	}
	if p, k := tr.plain.Load(), tr.taking.Load(); p != 0 || k != 1 {
		t.Errorf("service transport: %d RoundTrip, %d RoundTripTakingHeader; want 0 and 1", p, k)
	}
}
