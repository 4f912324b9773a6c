// Command order-processor is the function that charges the shop's orders. nubo
// invokes it with CloudEvents on $PORT: com.shop.order.placed events from the
// order-jobs queue (in batches), and {"kind": "sales-report"} requests from the
// nightly schedule (as the event's data) and from the gateway's POST
// /admin/reports (an HTTP request event whose body the route's request
// transform made).
//
// A charged order is announced as com.shop.order.processed through $NUBO_API.
// An order over the charge limit is declined with a 422: nubo retries it and
// then moves it to the order-jobs-dlq queue, where it can be inspected and
// redriven. Charging is idempotent per order, so a redelivered batch does not
// charge twice within one instance.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/nubo-dev/nubo/examples/shop/internal/cloudevent"
	"github.com/nubo-dev/nubo/examples/shop/internal/server"
)

// defaultPort is used when $PORT is unset (a function has no fixed port).
const defaultPort = 8090

// chargeLimitCents is the largest order charged without a manual review.
const chargeLimitCents = 500_000

// errUnprocessable marks events that no retry can fix.
var errUnprocessable = errors.New("unprocessable")

type processor struct {
	log     *slog.Logger
	pub     *cloudevent.Publisher
	payMode string
	started time.Time

	mu      sync.Mutex
	charged map[string]string // order id -> charge id
	revenue int64
}

type result struct {
	ID     string `json:"id"`
	Result any    `json:"result,omitempty"`
	Error  string `json:"error,omitempty"`
}

func main() {
	log := server.NewLogger()
	p := &processor{log: log, pub: cloudevent.NewPublisher("order-processor", log), payMode: "test",
		started: time.Now().UTC(), charged: map[string]string{}}
	if strings.HasPrefix(os.Getenv("PAYMENTS_API_KEY"), "live_") { // the key itself is never logged
		p.payMode = "live"
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /", p.invoke)
	if err := server.Run(log, defaultPort, mux); err != nil {
		log.Error("order-processor stopped", "err", err)
		os.Exit(1)
	}
}

// invoke answers one invocation: one event, or a batch whose answer lists a
// result per event. Any failure fails the whole invocation, so that nubo
// delivers it again.
func (p *processor) invoke(w http.ResponseWriter, r *http.Request) {
	events, batch, err := cloudevent.Read(r)
	if err != nil {
		server.WriteError(w, http.StatusBadRequest, "%v", err)
		return
	}
	status, results := http.StatusOK, make([]result, 0, len(events))
	for _, e := range events {
		out, err := p.handle(r.Context(), e)
		res := result{ID: e.ID, Result: out}
		if err != nil {
			res.Error = err.Error()
			code := http.StatusInternalServerError
			if errors.Is(err, errUnprocessable) {
				code = http.StatusUnprocessableEntity
			}
			status = max(status, code)
			p.log.Warn("event failed", "id", e.ID, "type", e.Type, "err", err)
		}
		results = append(results, res)
	}
	switch {
	case batch:
		server.WriteJSON(w, status, results)
	case results[0].Error != "":
		server.WriteError(w, status, "%s", results[0].Error)
	default:
		server.WriteJSON(w, status, results[0].Result)
	}
}

func (p *processor) handle(ctx context.Context, e cloudevent.Event) (any, error) {
	if e.Type == "com.shop.order.placed" {
		return p.charge(ctx, e)
	}
	var req struct {
		Kind string `json:"kind"`
	}
	data, err := e.Payload()
	if err == nil && json.Unmarshal(data, &req) == nil && req.Kind == "sales-report" {
		return p.report(), nil
	}
	return nil, fmt.Errorf("unsupported event type %q: %w", e.Type, errUnprocessable)
}

func (p *processor) charge(ctx context.Context, e cloudevent.Event) (any, error) {
	var o struct {
		OrderID    string `json:"orderId"`
		TotalCents int64  `json:"totalCents"`
		Currency   string `json:"currency"`
	}
	if err := e.DataAs(&o); err != nil || o.OrderID == "" || o.TotalCents <= 0 {
		return nil, fmt.Errorf("invalid order in event %s: %w", e.ID, errUnprocessable)
	}
	if o.TotalCents > chargeLimitCents {
		return nil, fmt.Errorf("declined order %s: total %d over the limit of %d: %w", o.OrderID, o.TotalCents, chargeLimitCents, errUnprocessable)
	}
	p.mu.Lock()
	chargeID, done := p.charged[o.OrderID]
	p.mu.Unlock()
	if !done {
		chargeID = fmt.Sprintf("ch_%s_%s", p.payMode, o.OrderID)
	}
	out := map[string]any{"orderId": o.OrderID, "chargeId": chargeID, "totalCents": o.TotalCents, "currency": o.Currency, "payment": p.payMode}
	// Publish before remembering the charge: if publishing fails, the retry
	// publishes again rather than skipping the order.
	if err := p.pub.Publish(ctx, "com.shop.order.processed", "order-"+o.OrderID, out); err != nil {
		return nil, err
	}
	p.mu.Lock()
	if _, ok := p.charged[o.OrderID]; !ok {
		p.charged[o.OrderID] = chargeID
		p.revenue += o.TotalCents
	}
	p.mu.Unlock()
	p.log.Info("order charged", "order", o.OrderID, "charge", chargeID, "totalCents", o.TotalCents)
	return out, nil
}

// report sums what this instance charged since it started: functions scale
// to zero, so a real report would read shop-db instead.
func (p *processor) report() any {
	p.mu.Lock()
	defer p.mu.Unlock()
	return map[string]any{"kind": "sales-report", "since": p.started, "orders": len(p.charged), "revenueCents": p.revenue}
}
