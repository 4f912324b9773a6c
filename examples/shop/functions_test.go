package shop_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"slices"
	"testing"

	"github.com/itchyny/gojq"

	"github.com/nubo-dev/nubo/internal/functions"
	"github.com/nubo-dev/nubo/internal/spec"
)

// structured returns a structured-mode CloudEvent, as a batch carries them.
func structured(id, typ, source, data string) string {
	return fmt.Sprintf(`{"specversion":"1.0","id":%q,"type":%q,"source":%q,"data":%s}`, id, typ, source, data)
}

// placedData is the data of a com.shop.order.placed event for one item.
func placedData(orderID string, totalCents int64) string {
	return fmt.Sprintf(`{"orderId":%q,"userId":"1","items":[{"productId":"p-100","quantity":1,"priceCents":%d}],"totalCents":%d,"currency":"EUR"}`,
		orderID, totalCents, totalCents)
}

// jq runs a jq program of the spec on input and returns its first result.
func jq(t *testing.T, program string, input any) any {
	t.Helper()
	q, err := gojq.Parse(program)
	if err != nil {
		t.Fatalf("jq %q: %v", program, err)
	}
	v, ok := q.Run(input).Next()
	if !ok {
		t.Fatalf("jq %q gave no result", program)
	}
	if err, isErr := v.(error); isErr {
		t.Fatalf("jq %q: %v", program, err)
	}
	return v
}

// route returns the gateway route of the spec for path.
func route(t *testing.T, app *spec.App, path string) *spec.GatewayRoute {
	t.Helper()
	for _, r := range app.Gateway.Routes {
		if r.Path == path {
			return r
		}
	}
	t.Fatalf("the spec's gateway has no route %s", path)
	return nil
}

type charge struct {
	OrderID  string `json:"orderId"`
	ChargeID string `json:"chargeId"`
	Payment  string `json:"payment"`
}

type salesReport struct {
	Kind         string `json:"kind"`
	Orders       int    `json:"orders"`
	RevenueCents int64  `json:"revenueCents"`
}

func testOrderProcessor(t *testing.T, app *spec.App, bins string) {
	pl := newPlatform(t)
	bin := filepath.Join(bins, "order-processor")
	op := start(t, bin, "NUBO_API="+pl.url)

	var c charge
	placed := binaryEvent("e1", "com.shop.order.placed", "orders", "order-7")
	call(t, "POST", op.url, placed, placedData("7", 2490)).want(t, http.StatusOK, &c)
	if c != (charge{"7", "ch_test_7", "test"}) {
		t.Errorf("charged %+v, want order 7, charge ch_test_7, test mode", c)
	}
	if e := pl.published(t, app, "com.shop.order.processed"); e.Subject != "order-7" {
		t.Errorf("order.processed subject = %q, want order-7", e.Subject)
	}
	// A redelivery publishes again (the first answer may have been lost)
	// but does not charge or count the order twice.
	call(t, "POST", op.url, placed, placedData("7", 2490)).want(t, http.StatusOK, &c)
	pl.published(t, app, "com.shop.order.processed")

	// A batch from the order-jobs queue: one order charged, one declined,
	// so the batch fails and nubo retries it, then dead-letters it.
	batch := "[" + structured("e2", "com.shop.order.placed", "orders", placedData("8", 7900)) + "," +
		structured("e3", "com.shop.order.placed", "orders", placedData("9", 900_000)) + "]"
	var results []struct {
		ID     string          `json:"id"`
		Result json.RawMessage `json:"result"`
		Error  string          `json:"error"`
	}
	call(t, "POST", op.url, nil, batch).want(t, http.StatusUnprocessableEntity, &results)
	if len(results) != 2 || results[0].Error != "" || !regexp.MustCompile(`^declined order 9\b`).MatchString(results[1].Error) {
		t.Errorf("batch results = %+v, want order 8 charged and order 9 declined", results)
	}
	pl.published(t, app, "com.shop.order.processed")
	pl.none(t)

	// The nightly schedule's payload, as the spec writes it.
	payload, err := json.Marshal(app.Schedules["nightly-sales-report"].Payload)
	if err != nil {
		t.Fatal(err)
	}
	var rep salesReport
	call(t, "POST", op.url, binaryEvent("s1", "nubo.schedule", "nightly-sales-report", ""), string(payload)).want(t, http.StatusOK, &rep)
	if rep != (salesReport{"sales-report", 2, 2490 + 7900}) {
		t.Errorf("report = %+v, want 2 orders (7 and 8) for %d cents", rep, 2490+7900)
	}

	// The gateway's POST /admin/reports: the function gets the HTTP request
	// as the event the gateway makes of it (functions.NewHTTPEvent), with
	// the body the route's request transform made; its status mapping turns
	// an unsupported event into a 400.
	reports := route(t, app, "/admin/reports")
	body, err := json.Marshal(jq(t, reports.Request.Transform, map[string]any{"anything": true}))
	if err != nil {
		t.Fatal(err)
	}
	ev, err := functions.NewHTTPEvent(httptest.NewRequest(http.MethodPost, "/admin/reports", bytes.NewReader(body)))
	if err != nil {
		t.Fatal(err)
	}
	rep = salesReport{}
	call(t, "POST", op.url, binaryEvent(ev.ID(), ev.Type(), ev.Source(), ev.Subject()), string(ev.Data())).want(t, http.StatusOK, &rep)
	if rep != (salesReport{"sales-report", 2, 2490 + 7900}) {
		t.Errorf("report through the gateway's event = %+v, want 2 orders for %d cents", rep, 2490+7900)
	}
	r := call(t, "POST", op.url, binaryEvent("g2", "com.shop.unknown", "gateway", ""), `{}`)
	r.wantError(t, http.StatusUnprocessableEntity, "unsupported event type")
	var msg struct{ Error string }
	_ = json.Unmarshal(r.body, &msg)
	mapped := false
	for _, sc := range reports.Response.StatusCodes {
		mapped = mapped || regexp.MustCompile(sc.Pattern).MatchString(msg.Error) && sc.Status == http.StatusBadRequest
	}
	if !mapped {
		t.Errorf("no statusCodes pattern of /admin/reports maps %q to 400", msg.Error)
	}

	call(t, "POST", op.url, nil, `{"orderId":"1"}`).wantError(t, http.StatusBadRequest, "not a CloudEvent")

	// Outside nubo (no NUBO_API) the event is skipped with a log line.
	alone := start(t, bin)
	call(t, "POST", alone.url, placed, placedData("7", 2490)).want(t, http.StatusOK, &c)
	if rec := alone.waitRecords(t, "NUBO_API is not set: event not published", 1)[0]; rec["type"] != "com.shop.order.processed" {
		t.Errorf("without NUBO_API the log says %v, want it to name the com.shop.order.processed event", rec)
	}
}

func testSendWelcome(t *testing.T, app *spec.App, bins string) {
	sw := start(t, filepath.Join(bins, "send-welcome"), "SHOP_NAME=Nubo Coffee", "MAIL_FROM=welcome@shop.localhost")

	// A com.shop.user.created event as users publishes it goes through the
	// welcome-new-users rule's filter and transform on its way here.
	rule := app.Rules["welcome-new-users"]
	var filter string
	for _, f := range rule.Filter.All {
		if f.JQ != "" {
			filter = f.JQ
		}
	}
	created := func(email string) map[string]any {
		return map[string]any{"specversion": "1.0", "id": "e1", "source": "users", "type": "com.shop.user.created",
			"subject": "user-1", "data": map[string]any{"id": "1", "email": email, "name": "Ada"}}
	}
	if jq(t, filter, created("ada@shop.localhost")) != true || jq(t, filter, created("ci@demo.test")) != false {
		t.Errorf("rule filter %q should pass ada@shop.localhost and drop ci@demo.test", filter)
	}
	data, err := json.Marshal(jq(t, rule.Transform, created("ada@shop.localhost")))
	if err != nil {
		t.Fatal(err)
	}

	var sent map[string]string
	call(t, "POST", sw.url, binaryEvent("e1", "com.shop.user.created", "users", "user-1"), string(data)).want(t, http.StatusOK, &sent)
	if sent["to"] != "ada@shop.localhost" || sent["subject"] != "Welcome to Nubo Coffee, Ada!" {
		t.Errorf("sent %v", sent)
	}
	out := sw.waitRecords(t, "outbox", 1)
	if out[0]["from"] != "welcome@shop.localhost" || out[0]["body"] == "" {
		t.Errorf("outbox record %v, want a whole mail from welcome@shop.localhost", out[0])
	}

	bad := "[" + structured("e2", "x", "users", `{"email":"eve@shop.localhost"}`) + "," + structured("e3", "x", "users", `{"email":"nope"}`) + "]"
	call(t, "POST", sw.url, nil, bad).wantError(t, http.StatusUnprocessableEntity, `invalid email "nope"`)
	good := "[" + structured("e4", "x", "users", `{"email":"eve@shop.localhost"}`) + "," + structured("e5", "x", "users", `{"email":"mo@shop.localhost","name":"Mo"}`) + "]"
	var batch []map[string]string
	call(t, "POST", sw.url, nil, good).want(t, http.StatusOK, &batch)
	if len(batch) != 2 || batch[0]["subject"] != "Welcome to Nubo Coffee, there!" || batch[1]["subject"] != "Welcome to Nubo Coffee, Mo!" {
		t.Errorf("batch sent %v", batch)
	}
	// Output is ordered: once the good batch's mails are in, a mail of the
	// failed batch would be too. It must not be: that batch is delivered again.
	var to []any
	for _, rec := range sw.waitRecords(t, "outbox", 3) {
		to = append(to, rec["to"])
	}
	if want := []any{"ada@shop.localhost", "eve@shop.localhost", "mo@shop.localhost"}; !slices.Equal(to, want) {
		t.Errorf("mails went to %v, want %v: none for the failed batch", to, want)
	}
}
