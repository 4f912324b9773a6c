// Command fn is the function the tests invoke, written with the Go SDK. The
// event's type picks what it does; its data holds the parameters.
//
// FN_START=fail makes it exit at start, FN_START=never makes it never
// listen.
package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2/event"

	"github.com/nubo-dev/nubo/sdk"
	"github.com/nubo-dev/nubo/sdk/function"
)

type params struct {
	MS    int      `json:"ms"`
	MB    int      `json:"mb"`
	Names []string `json:"names"`
	File  string   `json:"file"`
	Until int      `json:"until"`
	Queue string   `json:"queue"`
}

var (
	inflight atomic.Int64
	peak     atomic.Int64
	mu       sync.Mutex
	hoard    [][]byte
)

func main() {
	switch os.Getenv("FN_START") {
	case "fail":
		fmt.Fprintln(os.Stderr, "fn: refusing to start on purpose")
		os.Exit(4)
	case "never":
		select {}
	}
	function.Start(handle)
}

func handle(ctx context.Context, e cloudevents.Event) (any, error) {
	n := inflight.Add(1)
	defer inflight.Add(-1)
	for {
		p := peak.Load()
		if n <= p || peak.CompareAndSwap(p, n) {
			break
		}
	}
	var p params
	if len(e.Data()) > 0 && strings.Contains(e.DataContentType(), "json") {
		_ = e.DataAs(&p)
	}
	id := map[string]any{"pid": os.Getpid(), "instance": os.Getenv("NUBO_INSTANCE")}
	switch e.Type() {
	case "echo":
		id["type"], id["id"], id["data"] = e.Type(), e.ID(), string(e.Data())
		return id, nil
	case "sleep":
		time.Sleep(time.Duration(p.MS) * time.Millisecond)
		id["peak"] = peak.Load()
		return id, nil
	case "hang":
		select {}
	case "crash":
		fmt.Fprintln(os.Stderr, "fn: crashing on purpose")
		os.Exit(3)
	case "fail":
		return nil, function.Errorf(http.StatusUnprocessableEntity, "failing on purpose")
	case "flaky":
		tries := bump(p.File)
		if tries < p.Until {
			return nil, fmt.Errorf("attempt %d fails", tries)
		}
		id["tries"] = tries
		return id, nil
	case "hog":
		for i := 0; i < p.MB; i++ {
			b := make([]byte, 1<<20)
			for j := range b {
				b[j] = byte(j)
			}
			mu.Lock()
			hoard = append(hoard, b)
			mu.Unlock()
		}
		return id, nil
	case "env":
		env := map[string]string{}
		for _, name := range p.Names {
			env[name] = os.Getenv(name)
		}
		return env, nil
	case "deadline":
		d, ok := ctx.Deadline()
		return map[string]any{"hasDeadline": ok, "left": time.Until(d).Milliseconds()}, nil
	case "publish":
		api, err := sdk.NewClient()
		if err != nil {
			return nil, err
		}
		out, err := sdk.NewEvent("fn.published", map[string]string{"from": e.ID()})
		if err != nil {
			return nil, err
		}
		if err := api.SendToQueue(ctx, p.Queue, out); err != nil {
			return nil, err
		}
		return map[string]string{"published": out.ID(), "source": out.Source()}, nil
	case function.HTTPRequestType:
		req, err := function.ReadHTTPRequest(e)
		if err != nil {
			return nil, err
		}
		return &function.Response{
			Status: http.StatusCreated,
			Header: http.Header{"X-Fn": {"yes"}},
			Body:   map[string]any{"method": req.Method, "path": req.Path, "params": req.PathParameters, "body": req.Body, "query": req.Query},
		}, nil
	}
	return nil, function.Errorf(http.StatusBadRequest, "unknown type %q", e.Type())
}

// bump increments the count in file and returns it: state that outlives
// instances.
func bump(file string) int {
	mu.Lock()
	defer mu.Unlock()
	data, _ := os.ReadFile(file)
	n, _ := strconv.Atoi(strings.TrimSpace(string(data)))
	n++
	_ = os.WriteFile(file, []byte(strconv.Itoa(n)), 0o644)
	return n
}
