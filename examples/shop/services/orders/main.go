// Command orders takes the shop's orders. It checks the customer with the users
// service and prices the items with the catalog, calling both by name
// (http://users, http://catalog) through the standard HTTP client, which honours
// the HTTP_PROXY that nubo points at the mesh; USERS_URL and CATALOG_URL
// override the addresses. Each order is announced as com.shop.order.placed
// (on the bus, and as the first event of its order-ID stream in the event
// store, for the customer-stats projection in users), and marked paid when order-processor's com.shop.order.processed comes back
// through the order-events topic. Orders are kept in memory, so nubo.yaml runs
// one replica.
package main

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nubo-dev/nubo/examples/shop/internal/cloudevent"
	"github.com/nubo-dev/nubo/examples/shop/internal/server"
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

	mu     sync.Mutex
	orders map[string]*order
	byKey  map[string]string // Idempotency-Key -> order id
	next   int
}

func main() {
	log := server.NewLogger()
	a := &app{log: log, pub: cloudevent.NewPublisher("orders", log), client: &http.Client{Timeout: 5 * time.Second},
		users: server.Env("USERS_URL", "http://users"), catalog: server.Env("CATALOG_URL", "http://catalog"), payMode: "test",
		orders: map[string]*order{}, byKey: map[string]string{}, next: 1000}
	if a.maxItems, _ = strconv.Atoi(server.Env("MAX_ITEMS_PER_ORDER", "20")); a.maxItems < 1 {
		log.Warn("MAX_ITEMS_PER_ORDER is not a positive number: using 20")
		a.maxItems = 20
	}
	if strings.HasPrefix(os.Getenv("PAYMENTS_API_KEY"), "live_") { // the key itself is never logged
		a.payMode = "live"
	}

	mux := http.NewServeMux()
	mux.HandleFunc("POST /orders", a.create)
	mux.HandleFunc("GET /orders/{id}", a.get)
	mux.HandleFunc("POST /events", a.event)
	if err := server.Run(log, defaultPort, mux, "users", a.users, "catalog", a.catalog, "payments", a.payMode); err != nil {
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
	if o, ok := a.lookup(a.idFor(key)); ok && key != "" {
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
	a.mu.Lock()
	a.next++
	o.ID = strconv.Itoa(a.next)
	a.mu.Unlock()

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
	if err := a.pub.Append(r.Context(), "order-"+o.ID, "com.shop.order.placed", cloudevent.NewID(), data); err != nil {
		a.log.Warn("order not in the event store: customer statistics will miss it", "order", o.ID, "err", err)
	}
	created := *o
	a.mu.Lock()
	a.orders[o.ID] = o
	if key != "" {
		a.byKey[key] = o.ID
	}
	a.mu.Unlock()
	server.WriteJSON(w, http.StatusCreated, created)
}

// get answers an order. An order changes from placed to paid within a
// second or so, so the answer says no-store: the gateway's prod stage caches
// GET answers for 60 s and would otherwise show "placed" for a minute.
func (a *app) get(w http.ResponseWriter, r *http.Request) {
	if o, ok := a.lookup(r.PathValue("id")); ok {
		w.Header().Set("Cache-Control", "no-store")
		server.WriteJSON(w, http.StatusOK, o)
		return
	}
	server.WriteError(w, http.StatusNotFound, "order %s not found", r.PathValue("id"))
}

// lookup returns a copy of an order, safe to encode while events update it.
func (a *app) lookup(id string) (order, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	o, ok := a.orders[id]
	if !ok {
		return order{}, false
	}
	return *o, true
}

func (a *app) idFor(key string) string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.byKey[key]
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
// are not delivered again.
func (a *app) event(w http.ResponseWriter, r *http.Request) {
	events, _, err := cloudevent.Read(r)
	if err != nil {
		server.WriteError(w, http.StatusBadRequest, "%v", err)
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	paid := 0
	for _, e := range events {
		var p struct {
			OrderID  string `json:"orderId"`
			ChargeID string `json:"chargeId"`
		}
		if e.Type != "com.shop.order.processed" || e.DataAs(&p) != nil {
			continue
		}
		if o, ok := a.orders[p.OrderID]; ok {
			o.Status, o.ChargeID = "paid", p.ChargeID
			paid++
		}
	}
	server.WriteJSON(w, http.StatusOK, map[string]int{"paid": paid})
}
