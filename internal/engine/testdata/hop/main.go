// Command hop is a service of a traced request with no tracing code of
// its own: it passes the traceparent it got on, as any instrumentation
// would, to the service $NEXT (through the mesh, by HTTP_PROXY) and to a
// publish into the queue $QUEUE, or to the platform API's path $PUBLISH
// (/v1/events: the bus), through the platform API ($NUBO_API).
package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"
)

func main() {
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		tp := r.Header.Get("Traceparent")
		if next := os.Getenv("NEXT"); next != "" {
			req, _ := http.NewRequest(http.MethodGet, next, nil)
			req.Header.Set("Traceparent", tp)
			if code, err := do(req); err != nil || code != http.StatusOK {
				http.Error(w, fmt.Sprintf("next: %d %v", code, err), http.StatusBadGateway)
				return
			}
		}
		path := os.Getenv("PUBLISH")
		if q := os.Getenv("QUEUE"); q != "" {
			path = "/v1/queues/" + q
		}
		if path != "" {
			id := strconv.FormatInt(time.Now().UnixNano(), 10)
			req, _ := http.NewRequest(http.MethodPost, os.Getenv("NUBO_API")+path,
				strings.NewReader(`{"specversion":"1.0","id":"`+id+`","source":"hop","type":"hop.done","data":{}}`))
			req.Header.Set("Content-Type", "application/cloudevents+json")
			req.Header.Set("Traceparent", tp)
			if code, err := do(req); err != nil || code != http.StatusAccepted {
				http.Error(w, fmt.Sprintf("publish: %d %v", code, err), http.StatusBadGateway)
				return
			}
		}
		fmt.Fprintln(w, "ok")
	})
	if err := http.ListenAndServe("127.0.0.1:"+os.Getenv("PORT"), nil); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func do(req *http.Request) (int, error) {
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, nil
}
