// Package mcpserver is `nubo mcp`: a Model Context Protocol server over
// stdio, built on the protocol's official Go SDK, that lets an AI agent see
// and act on a running engine. It is a client of the same admin and
// platform APIs the CLI uses (internal/apitype), so an agent can do nothing
// the CLI cannot, and every action goes through the engine's own checks.
//
// Tools: status, logs, query (PromQL), alerts, slos, dead_letters, and the
// actions restart, scale, publish, invoke and redrive. Resources: the spec file and
// the gateway's OpenAPI document.
package mcpserver

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/nubo-dev/nubo/internal/apitype"
	"github.com/nubo-dev/nubo/internal/audit"
	"github.com/nubo-dev/nubo/internal/console"
)

// Config is what the server needs.
type Config struct {
	// Engine is the running engine's console address, HOST:PORT.
	Engine string
	// Token returns the engine's console token, which state-changing
	// requests carry (console.TokenHeader); nil sends none.
	Token func() string
	// SpecFile is the spec the engine runs, served as a resource.
	SpecFile string
	// OpenAPI returns the gateway's OpenAPI document; nil serves none.
	OpenAPI func() ([]byte, error)
	// Version is nubo's version, for the handshake.
	Version string
	// Client talks to the engine; default a client with a 30 s timeout.
	Client *http.Client
}

// maxAnswer bounds what one engine answer may be, so that a huge log or
// query result cannot exhaust the agent's context or nubo's memory.
const maxAnswer = 4 << 20

// New returns the MCP server of cfg, its tools and resources registered.
func New(cfg Config) *mcp.Server {
	if cfg.Client == nil {
		cfg.Client = &http.Client{Timeout: 30 * time.Second}
	}
	e := &engineAPI{base: "http://" + cfg.Engine, client: cfg.Client, token: cfg.Token}
	s := mcp.NewServer(&mcp.Implementation{Name: "nubo", Version: cfg.Version}, &mcp.ServerOptions{
		Instructions: "nubo runs a whole cloud-native system on this machine from nubo.yaml. " +
			"Use status first; logs, query (PromQL), alerts and slos to investigate; restart, publish, invoke and redrive act on the system.",
	})

	mcp.AddTool(s, &mcp.Tool{Name: "status", Description: "The running system: services and replicas (state, readiness, restarts, CPU, memory), functions, queues, addresses, and what nubo up does not run."},
		func(ctx context.Context, _ *mcp.CallToolRequest, _ struct{}) (*mcp.CallToolResult, apitype.Status, error) {
			var st apitype.Status
			err := e.get(ctx, "/admin/v1/status", &st)
			return nil, st, err
		})
	mcp.AddTool(s, &mcp.Tool{Name: "logs", Description: "Recent output lines of the system's processes and the engine's own events, oldest first."},
		func(ctx context.Context, _ *mcp.CallToolRequest, in logsInput) (*mcp.CallToolResult, logsOutput, error) {
			lines, err := e.logs(ctx, in)
			return nil, logsOutput{Lines: lines}, err
		})
	mcp.AddTool(s, &mcp.Tool{Name: "query", Description: "Evaluate a PromQL expression against the engine's metrics (the Prometheus HTTP API's /api/v1/query)."},
		func(ctx context.Context, _ *mcp.CallToolRequest, in queryInput) (*mcp.CallToolResult, any, error) {
			v := url.Values{"query": {in.Query}}
			if in.Time != "" {
				v.Set("time", in.Time)
			}
			var out any
			err := e.get(ctx, "/api/v1/query?"+v.Encode(), &out)
			return nil, out, err
		})
	mcp.AddTool(s, &mcp.Tool{Name: "alerts", Description: "Pending and firing alerts, their incidents and escalation, and the silences."},
		func(ctx context.Context, _ *mcp.CallToolRequest, _ struct{}) (*mcp.CallToolResult, any, error) {
			var out any
			err := e.get(ctx, "/admin/v1/alerts", &out)
			return nil, out, err
		})
	mcp.AddTool(s, &mcp.Tool{Name: "slos", Description: "Every SLO with its SLI, error budget left and burn rates."},
		func(ctx context.Context, _ *mcp.CallToolRequest, _ struct{}) (*mcp.CallToolResult, any, error) {
			var out any
			err := e.get(ctx, "/admin/v1/slos", &out)
			return nil, out, err
		})
	mcp.AddTool(s, &mcp.Tool{Name: "dead_letters", Description: "The events in a dead-letter queue, with why each failed."},
		func(ctx context.Context, _ *mcp.CallToolRequest, in queueInput) (*mcp.CallToolResult, apitype.DeadLettersResponse, error) {
			var out apitype.DeadLettersResponse
			err := e.get(ctx, "/v1/deadletters/"+url.PathEscape(in.Queue), &out)
			return nil, out, err
		})
	mcp.AddTool(s, &mcp.Tool{Name: "restart", Description: "Restart a service: its replicas are replaced one by one, each new one ready before an old one stops."},
		func(ctx context.Context, _ *mcp.CallToolRequest, in serviceInput) (*mcp.CallToolResult, done, error) {
			err := e.send(ctx, "POST", "/admin/v1/services/"+url.PathEscape(in.Service)+"/restart", "", nil, nil)
			return nil, done{OK: err == nil}, err
		})
	mcp.AddTool(s, &mcp.Tool{Name: "scale", Description: "Set a service's replica count by hand (not for a service that autoscales); it holds until the spec's replicas change."},
		func(ctx context.Context, _ *mcp.CallToolRequest, in scaleInput) (*mcp.CallToolResult, done, error) {
			body, _ := json.Marshal(map[string]int{"replicas": in.Replicas})
			err := e.send(ctx, "POST", "/admin/v1/services/"+url.PathEscape(in.Service)+"/scale", "application/json", body, nil)
			return nil, done{OK: err == nil}, err
		})
	mcp.AddTool(s, &mcp.Tool{Name: "publish", Description: "Publish a CloudEvent to a queue, a topic, or the event bus (to: queue:NAME, topic:NAME or bus)."},
		func(ctx context.Context, _ *mcp.CallToolRequest, in publishInput) (*mcp.CallToolResult, apitype.PublishResponse, error) {
			var out apitype.PublishResponse
			path, err := publishPath(in.To)
			if err != nil {
				return nil, out, err
			}
			body, err := cloudEvent(in.Type, in.Source, in.Data)
			if err != nil {
				return nil, out, err
			}
			err = e.send(ctx, "POST", path, "application/cloudevents+json", body, &out)
			return nil, out, err
		})
	mcp.AddTool(s, &mcp.Tool{Name: "invoke", Description: "Invoke a function once with a CloudEvent and return its answer."},
		func(ctx context.Context, _ *mcp.CallToolRequest, in invokeInput) (*mcp.CallToolResult, any, error) {
			body, err := cloudEvent(in.Type, "nubo-mcp", in.Data)
			if err != nil {
				return nil, nil, err
			}
			var out any
			err = e.send(ctx, "POST", "/v1/functions/"+url.PathEscape(in.Function)+"/invoke", "application/cloudevents+json", body, &out)
			return nil, out, err
		})
	mcp.AddTool(s, &mcp.Tool{Name: "redrive", Description: "Send a dead-letter queue's events (all, or the IDs given) back to where they failed."},
		func(ctx context.Context, _ *mcp.CallToolRequest, in redriveInput) (*mcp.CallToolResult, apitype.RedriveResponse, error) {
			var out apitype.RedriveResponse
			req, _ := json.Marshal(apitype.RedriveRequest{All: len(in.IDs) == 0, IDs: in.IDs})
			err := e.send(ctx, "POST", "/v1/deadletters/"+url.PathEscape(in.Queue)+"/redrive", "application/json", req, &out)
			return nil, out, err
		})

	if cfg.SpecFile != "" {
		s.AddResource(&mcp.Resource{URI: "nubo://spec", Name: "spec", Description: "The nubo.yaml the engine runs.", MIMEType: "application/yaml"},
			func(ctx context.Context, req *mcp.ReadResourceRequest) (*mcp.ReadResourceResult, error) {
				data, err := os.ReadFile(cfg.SpecFile)
				if err != nil {
					return nil, err
				}
				return &mcp.ReadResourceResult{Contents: []*mcp.ResourceContents{{URI: req.Params.URI, MIMEType: "application/yaml", Text: string(data)}}}, nil
			})
	}
	if cfg.OpenAPI != nil {
		s.AddResource(&mcp.Resource{URI: "nubo://openapi", Name: "openapi", Description: "The API gateway as an OpenAPI 3.1 document.", MIMEType: "application/json"},
			func(ctx context.Context, req *mcp.ReadResourceRequest) (*mcp.ReadResourceResult, error) {
				data, err := cfg.OpenAPI()
				if err != nil {
					return nil, err
				}
				return &mcp.ReadResourceResult{Contents: []*mcp.ResourceContents{{URI: req.Params.URI, MIMEType: "application/json", Text: string(data)}}}, nil
			})
	}
	return s
}

type logsInput struct {
	Service string `json:"service,omitempty" jsonschema:"only this service's lines (or a function's); empty for all"`
	Since   string `json:"since,omitempty" jsonschema:"a duration back from now (5m) or an RFC 3339 time"`
	Tail    int    `json:"tail,omitempty" jsonschema:"the last N lines; default 200"`
	Grep    string `json:"grep,omitempty" jsonschema:"only lines containing this text"`
}

type logsOutput struct {
	Lines []apitype.LogLine `json:"lines"`
}

type queryInput struct {
	Query string `json:"query" jsonschema:"a PromQL expression"`
	Time  string `json:"time,omitempty" jsonschema:"evaluation time, RFC 3339 or Unix seconds; default now"`
}

type queueInput struct {
	Queue string `json:"queue" jsonschema:"the dead-letter queue's name"`
}

type serviceInput struct {
	Service string `json:"service" jsonschema:"the service's name"`
}

type scaleInput struct {
	Service  string `json:"service" jsonschema:"the service's name"`
	Replicas int    `json:"replicas" jsonschema:"the replica count, 0 to 100"`
}

type publishInput struct {
	To     string          `json:"to" jsonschema:"queue:NAME, topic:NAME or bus"`
	Type   string          `json:"type" jsonschema:"the CloudEvent's type"`
	Source string          `json:"source,omitempty" jsonschema:"the CloudEvent's source; default nubo-mcp"`
	Data   json.RawMessage `json:"data,omitempty" jsonschema:"the event's JSON data"`
}

type invokeInput struct {
	Function string          `json:"function" jsonschema:"the function's name"`
	Type     string          `json:"type,omitempty" jsonschema:"the CloudEvent's type; default nubo.mcp.invoke"`
	Data     json.RawMessage `json:"data,omitempty" jsonschema:"the event's JSON data"`
}

type redriveInput struct {
	Queue string   `json:"queue" jsonschema:"the dead-letter queue's name"`
	IDs   []uint64 `json:"ids,omitempty" jsonschema:"the dead letters to redrive; empty for all"`
}

type done struct {
	OK bool `json:"ok"`
}

func publishPath(to string) (string, error) {
	kind, name, _ := strings.Cut(to, ":")
	switch {
	case kind == "bus" && name == "":
		return "/v1/events", nil
	case kind == "queue" && name != "":
		return "/v1/queues/" + url.PathEscape(name), nil
	case kind == "topic" && name != "":
		return "/v1/topics/" + url.PathEscape(name), nil
	}
	return "", fmt.Errorf("to %q: want queue:NAME, topic:NAME or bus", to)
}

// cloudEvent is a structured-mode CloudEvent; the engine fills id and time.
func cloudEvent(typ, source string, data json.RawMessage) ([]byte, error) {
	if typ == "" {
		typ = "nubo.mcp.invoke"
	}
	if source == "" {
		source = "nubo-mcp"
	}
	ev := map[string]any{"specversion": "1.0", "type": typ, "source": source}
	if len(data) > 0 {
		if !json.Valid(data) {
			return nil, errors.New("data is not JSON")
		}
		ev["datacontenttype"] = "application/json"
		ev["data"] = data
	}
	return json.Marshal(ev)
}

// engineAPI is the running engine's admin and platform API.
type engineAPI struct {
	base   string
	client *http.Client
	token  func() string
}

func (e *engineAPI) get(ctx context.Context, path string, out any) error {
	return e.send(ctx, "GET", path, "", nil, out)
}

func (e *engineAPI) send(ctx context.Context, method, path, contentType string, body []byte, out any) error {
	req, err := http.NewRequestWithContext(ctx, method, e.base+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	req.Header.Set(audit.ActorHeader, audit.Actor("mcp"))
	if e.token != nil {
		console.SetToken(req, e.token())
	}
	resp, err := e.client.Do(req)
	if err != nil {
		return fmt.Errorf("the engine at %s does not answer (is nubo up running?): %w", e.base, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer+1))
	if err != nil {
		return err
	}
	if len(data) > maxAnswer {
		return fmt.Errorf("%s %s: the answer is larger than %d bytes; narrow the request", method, path, maxAnswer)
	}
	if resp.StatusCode/100 != 2 {
		var apiErr struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(data, &apiErr) == nil && apiErr.Error != "" {
			return fmt.Errorf("%s %s: %s", method, path, apiErr.Error)
		}
		return fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, bytes.TrimSpace(data))
	}
	if out == nil || len(data) == 0 {
		return nil
	}
	return json.Unmarshal(data, out)
}

// logs reads the log store's NDJSON, filtered.
func (e *engineAPI) logs(ctx context.Context, in logsInput) ([]apitype.LogLine, error) {
	v := url.Values{}
	if in.Service != "" {
		v.Set("service", in.Service)
	}
	if in.Since != "" {
		v.Set("since", in.Since)
	}
	tail := in.Tail
	if tail <= 0 {
		tail = 200
	}
	v.Set("tail", strconv.Itoa(tail))
	if in.Grep != "" {
		// The engine searches (its records on disk too) and sends only
		// the last matches.
		v.Set("grep", in.Grep)
	}
	req, err := http.NewRequestWithContext(ctx, "GET", e.base+"/admin/v1/logs?"+v.Encode(), nil)
	if err != nil {
		return nil, err
	}
	resp, err := e.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("the engine at %s does not answer (is nubo up running?): %w", e.base, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return nil, fmt.Errorf("logs: %s: %s", resp.Status, bytes.TrimSpace(b))
	}
	dec := json.NewDecoder(io.LimitReader(resp.Body, maxAnswer))
	var out []apitype.LogLine
	for {
		var l apitype.LogLine
		if err := dec.Decode(&l); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return nil, fmt.Errorf("logs: %w", err)
		}
		out = append(out, l)
	}
	if len(out) > tail {
		out = out[len(out)-tail:]
	}
	return out, nil
}
