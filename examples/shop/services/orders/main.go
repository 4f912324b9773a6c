// Command orders takes the shop's orders. It checks the customer with the users
// service and prices the items with the catalog, calling both by name
// (http://users, http://catalog) through the standard HTTP client, which honours
// the HTTP_PROXY that nubo points at the mesh; USERS_URL and CATALOG_URL
// override the addresses. Each order is announced as com.shop.order.placed
// (on the bus, and as the first event of its order-ID stream in the event
// store, for the customer-stats projection in users), and marked paid when order-processor's com.shop.order.processed comes back
// through the order-events topic. Orders are kept in shop-db (PostgreSQL,
// whose URL nubo gives it in DATABASE_URL; in memory without one), so any
// replica answers for any order.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/nubo-dev/nubo/examples/shop/internal/cloudevent"
	"github.com/nubo-dev/nubo/examples/shop/internal/database"
	"github.com/nubo-dev/nubo/examples/shop/internal/server"
	"github.com/nubo-dev/nubo/sdk/eventstore"
)

// defaultPort is services.orders.port in nubo.yaml, used when $PORT is unset.
const defaultPort = 8082

type item struct {
	ProductID  string `json:"productId"`
	Quantity   int    `json:"quantity"`
	PriceCents int64  `json:"priceCents"`
}

type order struct {
	ID          string    `json:"id"`
	UserID      string    `json:"userId"`
	Items       []item    `json:"items"`
	TotalCents  int64     `json:"totalCents"`
	Currency    string    `json:"currency"`
	Status      string    `json:"status"` // placed, then paid
	PaymentMode string    `json:"paymentMode"`
	ChargeID    string    `json:"chargeId,omitempty"`
	Created     time.Time `json:"created"`
}

type app struct {
	log      *slog.Logger
	pub      *cloudevent.Publisher
	client   *http.Client
	users    string // base URLs
	catalog  string
	maxItems int
	payMode  string // test, or live with a live_ payments key
	orders   ledger
	// es is the event store the orders' streams go to; nil without nubo.
	es *eventstore.Client
}

func main() {
	log := server.NewLogger()
	a := &app{log: log, pub: cloudevent.NewPublisher("orders", log), client: &http.Client{Timeout: 5 * time.Second},
		users: server.Env("USERS_URL", "http://users"), catalog: server.Env("CATALOG_URL", "http://catalog"), payMode: "test",
		orders: newMemoryLedger()}
	if a.maxItems, _ = strconv.Atoi(server.Env("MAX_ITEMS_PER_ORDER", "20")); a.maxItems < 1 {
		log.Warn("MAX_ITEMS_PER_ORDER is not a positive number: using 20")
		a.maxItems = 20
	}
	if strings.HasPrefix(os.Getenv("PAYMENTS_API_KEY"), "live_") { // the key itself is never logged
		a.payMode = "live"
	}

	storeName := "memory"
	if url := os.Getenv("DATABASE_URL"); url != "" {
		pool, err := database.Open(context.Background(), log, "orders", url, schema)
		if err != nil {
			log.Error("orders stopped", "err", err)
			os.Exit(1)
		}
		defer pool.Close()
		a.orders, storeName = postgresLedger{pool}, "postgres"
	}

	if es, err := eventstore.New(); err == nil {
		a.es = es
	} else {
		log.Warn("orders go to no event store", "err", err)
	}

	mux := http.NewServeMux()
	mux.HandleFunc("POST /orders", a.create)
	mux.HandleFunc("GET /orders/{id}", a.get)
	mux.HandleFunc("POST /events", a.event)
	if err := server.Run(log, defaultPort, mux, "users", a.users, "catalog", a.catalog, "payments", a.payMode, "store", storeName); err != nil {
		log.Error("orders stopped", "err", err)
		os.Exit(1)
	}
}

func (a *app) create(w http.ResponseWriter, r *http.Request) {
	var in struct {
		UserID string `json:"userId"`
		Items  []item `json:"items"`
	}
	if err := server.ReadJSON(w, r, &in); err != nil {
		server.WriteError(w, http.StatusBadRequest, "%v", err)
		return
	}
	key := r.Header.Get("Idempotency-Key")
	if o, ok, err := a.orders.byKey(r.Context(), key); err != nil {
		a.storeFailed(w, "order", err)
		return
	} else if ok {
		server.WriteJSON(w, http.StatusOK, o) // a retried request: the same order, not a second one
		return
	}
	n := 0
	for _, it := range in.Items {
		if it.Quantity < 1 {
			server.WriteError(w, http.StatusBadRequest, "invalid quantity %d of %s", it.Quantity, it.ProductID)
			return
		}
		n += it.Quantity
	}
	if n == 0 || n > a.maxItems {
		server.WriteError(w, http.StatusBadRequest, "an order holds 1 to %d items, not %d", a.maxItems, n)
		return
	}
	if status, err := a.fetch(r, a.users+"/users/"+url.PathEscape(in.UserID), nil); err != nil {
		server.WriteError(w, status, "user %s: %v", in.UserID, err)
		return
	}
	o := &order{UserID: in.UserID, Status: "placed", PaymentMode: a.payMode, Created: time.Now().UTC()}
	for _, it := range in.Items {
		var p struct {
			PriceCents int64  `json:"priceCents"`
			Currency   string `json:"currency"`
		}
		if status, err := a.fetch(r, a.catalog+"/products/"+url.PathEscape(it.ProductID), &p); err != nil {
			server.WriteError(w, status, "product %s: %v", it.ProductID, err)
			return
		}
		it.PriceCents, o.Currency = p.PriceCents, p.Currency
		o.Items, o.TotalCents = append(o.Items, it), o.TotalCents+p.PriceCents*int64(it.Quantity)
	}
	var err error
	if o.ID, err = a.orders.nextID(r.Context()); err != nil {
		a.storeFailed(w, "order", err)
		return
	}

	// Without its event an order would never be processed: refuse it instead.
	data := map[string]any{"orderId": o.ID, "userId": o.UserID, "items": o.Items, "totalCents": o.TotalCents, "currency": o.Currency}
	if err := a.pub.Publish(r.Context(), "com.shop.order.placed", "order-"+o.ID, data); err != nil {
		a.log.Error("order not placed", "order", o.ID, "err", err)
		server.WriteError(w, http.StatusServiceUnavailable, "order could not be placed, try again")
		return
	}
	// The order also goes into the event store, as the first event of its
	// order-ID stream, for the customer-stats projection in users. The
	// order is placed already: a failure here costs the statistics, not
	// the order, so it is logged.
	if err := a.appendOrder(r.Context(), o.ID, data); err != nil {
		a.log.Warn("order not in the event store: customer statistics will miss it", "order", o.ID, "err", err)
	}
	// The event is out: the order must be kept. A request retried with the
	// same key meanwhile may have saved its own order first; its answer
	// stands, and this order's events describe an order nobody will see.
	saved, first, err := a.orders.save(context.WithoutCancel(r.Context()), *o, key)
	if err != nil {
		a.storeFailed(w, "order", err)
		return
	}
	if !first {
		server.WriteJSON(w, http.StatusOK, saved)
		return
	}
	server.WriteJSON(w, http.StatusCreated, saved)
}

// appendOrder starts order id's stream with its placement; without an
// event store (no $NUBO_API) there is none to start.
func (a *app) appendOrder(ctx context.Context, id string, data any) error {
	if a.es == nil {
		return nil
	}
	e, err := eventstore.NewEvent("com.shop.order.placed", data)
	if err != nil {
		return err
	}
	_, err = a.es.Append(ctx, "order-"+id, eventstore.NoStream, e)
	return err
}

// storeFailed answers 503 for a ledger that failed: the database may be
// restarting.
func (a *app) storeFailed(w http.ResponseWriter, what string, err error) {
	a.log.Error(what+" failed", "err", err)
	server.WriteError(w, http.StatusServiceUnavailable, "%s failed, try again", what)
}

// get answers an order. An order changes from placed to paid within a
// second or so, so the answer says no-store: the gateway's prod stage caches
// GET answers for 60 s and would otherwise show "placed" for a minute.
func (a *app) get(w http.ResponseWriter, r *http.Request) {
	o, ok, err := a.orders.get(r.Context(), r.PathValue("id"))
	if err != nil {
		a.storeFailed(w, "get order", err)
		return
	}
	if ok {
		w.Header().Set("Cache-Control", "no-store")
		server.WriteJSON(w, http.StatusOK, o)
		return
	}
	server.WriteError(w, http.StatusNotFound, "order %s not found", r.PathValue("id"))
}

// fetch GETs a JSON resource of another service into v (nil: only check that
// it exists). On failure it returns the status to answer: 422 when the thing
// does not exist, 502 when the other service failed.
func (a *app) fetch(r *http.Request, u string, v any) (int, error) {
	req, err := http.NewRequestWithContext(r.Context(), http.MethodGet, u, nil)
	if err != nil {
		return http.StatusBadRequest, err
	}
	resp, err := a.client.Do(req)
	if err != nil {
		return http.StatusBadGateway, err
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusNotFound:
		return http.StatusUnprocessableEntity, fmt.Errorf("not found")
	case resp.StatusCode != http.StatusOK:
		return http.StatusBadGateway, fmt.Errorf("%s answered %s", u, resp.Status)
	case v != nil:
		if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
			return http.StatusBadGateway, fmt.Errorf("%s: %w", u, err)
		}
	}
	return http.StatusOK, nil
}

// event takes the order-events topic's deliveries: com.shop.order.processed
// marks an order paid. Other types are acknowledged and ignored, so that they
// are not delivered again. A ledger that fails answers 503: the topic
// delivers the batch again.
func (a *app) event(w http.ResponseWriter, r *http.Request) {
	events, _, err := cloudevent.Read(r)
	if err != nil {
		server.WriteError(w, http.StatusBadRequest, "%v", err)
		return
	}
	paid := 0
	for _, e := range events {
		var p struct {
			OrderID  string `json:"orderId"`
			ChargeID string `json:"chargeId"`
		}
		if e.Type != "com.shop.order.processed" || e.DataAs(&p) != nil {
			continue
		}
		ok, err := a.orders.markPaid(r.Context(), p.OrderID, p.ChargeID)
		if err != nil {
			a.storeFailed(w, "mark paid", err)
			return
		}
		if ok {
			paid++
		}
	}
	server.WriteJSON(w, http.StatusOK, map[string]int{"paid": paid})
}
