// Command users is the shop's account service. It keeps accounts in shop-db
// (PostgreSQL, whose URL nubo gives it in DATABASE_URL; in memory without
// one), so nubo.yaml runs it with two replicas. It announces each signup as a
// com.shop.user.created event, folds placed orders into per-customer
// statistics (the event store's customer-stats projection, once per event),
// starts each account's user-ID stream in the event store and answers the
// event store's snapshot requests for user-* streams.
package main

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/mail"
	"os"
	"strings"
	"time"

	"github.com/nubo-dev/nubo/examples/shop/internal/cloudevent"
	"github.com/nubo-dev/nubo/examples/shop/internal/database"
	"github.com/nubo-dev/nubo/examples/shop/internal/server"
)

// defaultPort is services.users.port in nubo.yaml, used when $PORT is unset.
const defaultPort = 8081

type user struct {
	ID         string    `json:"id"`
	Email      string    `json:"email"`
	Name       string    `json:"name,omitempty"`
	Created    time.Time `json:"created"`
	Orders     int       `json:"orders"`
	SpentCents int64     `json:"spentCents"`
}

type app struct {
	log   *slog.Logger
	pub   *cloudevent.Publisher
	store accounts
}

func main() {
	log := server.NewLogger()
	a := &app{log: log, pub: cloudevent.NewPublisher("users", log), store: newMemoryAccounts()}
	storeName := "memory"
	if url := os.Getenv("DATABASE_URL"); url != "" {
		pool, err := database.Open(context.Background(), log, "users", url, schema)
		if err != nil {
			log.Error("users stopped", "err", err)
			os.Exit(1)
		}
		defer pool.Close()
		a.store, storeName = postgresAccounts{pool}, "postgres"
	}

	mux := http.NewServeMux()
	mux.HandleFunc("GET /users", a.list)
	mux.HandleFunc("POST /users", a.create)
	mux.HandleFunc("GET /users/{id}", a.get)
	mux.HandleFunc("POST /projections/customer-stats", a.project)
	mux.HandleFunc("POST /snapshot", a.snapshot)
	if err := server.Run(log, defaultPort, mux, "store", storeName, "signup", os.Getenv("FEATURE_SIGNUP") != "false"); err != nil {
		log.Error("users stopped", "err", err)
		os.Exit(1)
	}
}

func (a *app) list(w http.ResponseWriter, r *http.Request) {
	out, err := a.store.list(r.Context())
	if err != nil {
		a.storeFailed(w, "list users", err)
		return
	}
	server.WriteJSON(w, http.StatusOK, out)
}

// storeFailed answers 503 for a store that failed: the database may be
// restarting, and the mesh retries 5xx on another replica.
func (a *app) storeFailed(w http.ResponseWriter, what string, err error) {
	a.log.Error(what+" failed", "err", err)
	server.WriteError(w, http.StatusServiceUnavailable, "%s failed, try again", what)
}

func (a *app) create(w http.ResponseWriter, r *http.Request) {
	if os.Getenv("FEATURE_SIGNUP") == "false" {
		server.WriteError(w, http.StatusForbidden, "signups are closed")
		return
	}
	var in struct {
		Email string `json:"email"`
		Name  string `json:"name"`
	}
	if err := server.ReadJSON(w, r, &in); err != nil {
		server.WriteError(w, http.StatusBadRequest, "%v", err)
		return
	}
	addr, err := mail.ParseAddress(in.Email)
	if err != nil || addr.Address != in.Email {
		server.WriteError(w, http.StatusBadRequest, "invalid email %q", in.Email)
		return
	}
	email := strings.ToLower(in.Email)
	created, err := a.store.create(r.Context(), email, in.Name)
	if taken := (errTaken{}); errors.As(err, &taken) {
		server.WriteError(w, http.StatusConflict, "email %s is already used by user %s", email, taken.id)
		return
	}
	if err != nil {
		a.storeFailed(w, "signup", err)
		return
	}

	// The signup stands even if the event is lost: the welcome mail is not
	// worth failing an account for. A real service would use an outbox table.
	data := map[string]string{"id": created.ID, "email": created.Email, "name": created.Name}
	if err := a.pub.Publish(r.Context(), "com.shop.user.created", "user-"+created.ID, data); err != nil {
		a.log.Error("signup event lost", "user", created.ID, "err", err)
	}
	// The account's history starts its user-ID stream in the event store,
	// whose user snapshots ask POST /snapshot for the account's state.
	if err := a.pub.Append(r.Context(), "user-"+created.ID, "com.shop.user.created", cloudevent.NewID(), data); err != nil {
		a.log.Warn("signup not in the event store", "user", created.ID, "err", err)
	}
	w.Header().Set("Location", "/users/"+created.ID)
	server.WriteJSON(w, http.StatusCreated, created)
}

func (a *app) get(w http.ResponseWriter, r *http.Request) {
	u, ok, err := a.store.get(r.Context(), r.PathValue("id"))
	if err != nil {
		a.storeFailed(w, "get user", err)
		return
	}
	if !ok {
		server.WriteError(w, http.StatusNotFound, "user %s not found", r.PathValue("id"))
		return
	}
	// The statistics move as the projection delivers: no cache may keep
	// an older answer (the gateway's stage caches GETs for 60 s).
	w.Header().Set("Cache-Control", "no-store")
	server.WriteJSON(w, http.StatusOK, u)
}

// project applies com.shop.order.placed events to the customers' statistics.
// The event store delivers them in batches and redelivers after a crash from
// its last checkpoint: the store applies each event id once. A failure
// answers 503, so the batch comes again.
func (a *app) project(w http.ResponseWriter, r *http.Request) {
	events, _, err := cloudevent.Read(r)
	if err != nil {
		server.WriteError(w, http.StatusBadRequest, "%v", err)
		return
	}
	applied, skipped := 0, 0
	for _, e := range events {
		var order struct {
			UserID     string `json:"userId"`
			TotalCents int64  `json:"totalCents"`
		}
		ok := false
		if e.Type == "com.shop.order.placed" && e.DataAs(&order) == nil {
			if ok, err = a.store.applyOrder(r.Context(), e.ID, order.UserID, order.TotalCents); err != nil {
				a.storeFailed(w, "projection", err)
				return
			}
		}
		if !ok {
			skipped++
			continue
		}
		applied++
	}
	server.WriteJSON(w, http.StatusOK, map[string]int{"applied": applied, "skipped": skipped})
}

// snapshot answers the event store's request for the state of a user-ID
// stream, named by the ce-subject header or the stream query parameter.
func (a *app) snapshot(w http.ResponseWriter, r *http.Request) {
	stream := r.Header.Get("ce-subject")
	if stream == "" {
		stream = r.URL.Query().Get("stream")
	}
	id, ok := strings.CutPrefix(stream, "user-")
	if !ok {
		server.WriteError(w, http.StatusBadRequest, "stream %q is not a user-ID stream", stream)
		return
	}
	u, ok, err := a.store.get(r.Context(), id)
	if err != nil {
		a.storeFailed(w, "snapshot", err)
		return
	}
	if !ok {
		server.WriteError(w, http.StatusNotFound, "user %s not found", id)
		return
	}
	server.WriteJSON(w, http.StatusOK, u)
}
