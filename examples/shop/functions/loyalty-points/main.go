// Command loyalty-points awards points for paid orders, written with nubo's
// Go SDK. Its event trigger takes every com.shop.order.processed event from
// the bus; it asks the orders service (by name, through the mesh: its
// vpc.egress allows exactly that) whose order it was, and publishes
// com.shop.points.awarded: one point per whole currency unit charged.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/nubo-dev/nubo/sdk"
	"github.com/nubo-dev/nubo/sdk/function"
)

type processed struct {
	OrderID    string `json:"orderId"`
	TotalCents int64  `json:"totalCents"`
	Currency   string `json:"currency"`
}

type awarded struct {
	OrderID string `json:"orderId"`
	UserID  string `json:"userId"`
	Points  int64  `json:"points"`
}

func main() {
	log := slog.New(slog.NewJSONHandler(os.Stdout, nil))
	api, err := sdk.NewClient()
	if err != nil {
		log.Error("loyalty-points cannot reach nubo", "err", err)
		os.Exit(1)
	}
	function.Start(func(ctx context.Context, e event.Event) (any, error) {
		var in processed
		if err := e.DataAs(&in); err != nil || in.OrderID == "" {
			// A bad event will not get better on a retry: 400, which
			// nubo retries and then dead-letters for a human to look at.
			return nil, function.Errorf(http.StatusBadRequest, "event %s: not a processed order: %v", e.ID(), err)
		}
		userID, err := orderUser(ctx, in.OrderID)
		if err != nil {
			return nil, err // 500: retried with backoff
		}
		out := awarded{OrderID: in.OrderID, UserID: userID, Points: in.TotalCents / 100}
		ev, err := sdk.NewEvent("com.shop.points.awarded", out)
		if err != nil {
			return nil, err
		}
		ev.SetSubject(userID)
		if err := api.Publish(ctx, ev); err != nil {
			return nil, fmt.Errorf("publish the points of order %s: %w", in.OrderID, err)
		}
		log.Info("points awarded", "order", in.OrderID, "user", userID, "points", out.Points)
		return out, nil
	})
}

// orderUser asks the orders service whose order it is.
func orderUser(ctx context.Context, orderID string) (string, error) {
	resp, err := sdk.CallService(ctx, http.MethodGet, "orders", "/orders/"+url.PathEscape(orderID), nil)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("orders: GET /orders/%s: %s", orderID, resp.Status)
	}
	var o struct {
		UserID string `json:"userId"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&o); err != nil {
		return "", fmt.Errorf("orders: GET /orders/%s: %w", orderID, err)
	}
	return o.UserID, nil
}
