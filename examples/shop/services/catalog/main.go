// Command catalog is the shop's product catalog. It is stateless (the products
// are compiled in), which is why nubo.yaml autoscales it and runs a canary of
// its next version, catalog-v2, beside it: any replica of either version
// answers any request. Each answer says which version served it in the
// x-catalog-version header, so the mesh's 90/10 split is visible with curl.
// Listings are cached in the `cache` database (Redis, CACHE_URL) as a
// catalog reading a database would: x-cache says hit or miss.
package main

import (
	"bytes"
	"encoding/json"
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

	var cache *listingCache
	if url := os.Getenv("CACHE_URL"); url != "" {
		var err error
		if cache, err = newListingCache(url, log); err != nil {
			log.Error("catalog stopped", "err", err)
			os.Exit(1)
		}
		defer cache.close()
	}

	withCurrency := func(p product) product { p.Currency = currency; return p }
	mux := http.NewServeMux()
	mux.HandleFunc("GET /products", func(w http.ResponseWriter, r *http.Request) {
		category := strings.ToLower(r.URL.Query().Get("category"))
		w.Header().Set("x-catalog-version", version)
		w.Header().Set("Content-Type", "application/json")
		key := "catalog:" + version + ":" + currency + ":products:" + category
		if b, ok := cache.get(r.Context(), key); ok {
			w.Header().Set("x-cache", "hit")
			_, _ = w.Write(b)
			return
		}
		out := []product{}
		for _, p := range products {
			if category == "" || strings.EqualFold(p.Category, category) {
				out = append(out, withCurrency(p))
			}
		}
		var b bytes.Buffer
		_ = json.NewEncoder(&b).Encode(out) // products always encode
		cache.set(r.Context(), key, b.Bytes())
		w.Header().Set("x-cache", "miss")
		_, _ = w.Write(b.Bytes())
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
	if err := server.Run(log, defaultPort, mux, "version", version, "products", len(products), "cache", cache != nil); err != nil {
		log.Error("catalog stopped", "err", err)
		os.Exit(1)
	}
}
