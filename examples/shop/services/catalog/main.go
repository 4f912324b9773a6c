// Command catalog is the shop's product catalog. It is stateless (the products
// are compiled in), which is why nubo.yaml autoscales it and runs a canary of
// its next version, catalog-v2, beside it: any replica of either version
// answers any request. Each answer says which version served it in the
// x-catalog-version header, so the mesh's 90/10 split is visible with curl.
package main

import (
	"net/http"
	"os"
	"strings"

	"github.com/nubo-dev/nubo/examples/shop/internal/server"
)

// defaultPort is services.catalog.port in nubo.yaml, used when $PORT is unset.
const defaultPort = 8083

type product struct {
	ID         string `json:"id"`
	Name       string `json:"name"`
	Category   string `json:"category"`
	PriceCents int64  `json:"priceCents"`
	Currency   string `json:"currency"`
}

var products = []product{
	{ID: "p-100", Name: "Espresso beans, 1 kg", Category: "coffee", PriceCents: 2490},
	{ID: "p-101", Name: "Filter coffee, 500 g", Category: "coffee", PriceCents: 1290},
	{ID: "p-200", Name: "Hand grinder", Category: "gear", PriceCents: 7900},
	{ID: "p-201", Name: "Pour-over kettle", Category: "gear", PriceCents: 5400},
	{ID: "p-300", Name: "Espresso machine", Category: "machines", PriceCents: 89900},
}

func main() {
	log := server.NewLogger()
	version := server.Env("CATALOG_VERSION", "v1")
	currency := server.Env("CURRENCY", "EUR")

	withCurrency := func(p product) product { p.Currency = currency; return p }
	mux := http.NewServeMux()
	mux.HandleFunc("GET /products", func(w http.ResponseWriter, r *http.Request) {
		category := r.URL.Query().Get("category")
		out := []product{}
		for _, p := range products {
			if category == "" || strings.EqualFold(p.Category, category) {
				out = append(out, withCurrency(p))
			}
		}
		w.Header().Set("x-catalog-version", version)
		server.WriteJSON(w, http.StatusOK, out)
	})
	mux.HandleFunc("GET /products/{id}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("x-catalog-version", version)
		for _, p := range products {
			if p.ID == r.PathValue("id") {
				server.WriteJSON(w, http.StatusOK, withCurrency(p))
				return
			}
		}
		server.WriteError(w, http.StatusNotFound, "product %s not found", r.PathValue("id"))
	})
	if err := server.Run(log, defaultPort, mux, "version", version, "products", len(products), "cache", os.Getenv("CACHE_URL") != ""); err != nil {
		log.Error("catalog stopped", "err", err)
		os.Exit(1)
	}
}
