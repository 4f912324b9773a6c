// Command users is the shop's account service. Each account is an
// event-sourced aggregate: its user-ID stream in nubo's event store is the
// record of every change (com.shop.user.created, com.shop.user.renamed,
// appended with optimistic concurrency), and the service answers the event
// store's snapshot requests for user-* streams by folding them. shop-db
// (PostgreSQL, whose URL nubo gives it in DATABASE_URL; memory without one)
// keeps the current profiles for reads and email uniqueness, so nubo.yaml
// runs two replicas, with per-customer order statistics folded from the
// event store's customer-stats projection, once per event. Each signup is
// also announced on the bus as com.shop.user.created.
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
	"github.com/nubo-dev/nubo/sdk/eventstore"
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
	// es is the event store holding the accounts' histories; nil when the
	// program runs without nubo (no $NUBO_API): accounts have no history.
	es *eventstore.Client
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
	if es, err := eventstore.New(); err == nil {
		a.es = es
	} else {
		log.Warn("accounts keep no history", "err", err)
	}

	mux := http.NewServeMux()
	mux.HandleFunc("GET /users", a.list)
	mux.HandleFunc("POST /users", a.create)
	mux.HandleFunc("GET /users/{id}", a.get)
	mux.HandleFunc("PATCH /users/{id}", a.update)
	mux.HandleFunc("POST /projections/customer-stats", a.project)
	mux.HandleFunc("POST /snapshot", a.snapshot)
	if err := server.Run(log, defaultPort, mux, "store", storeName, "history", a.es != nil, "signup", os.Getenv("FEATURE_SIGNUP") != "false"); err != nil {
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

	// The account's history starts its user-ID stream: an account without
	// one is taken back (a stream left over from an account taken back
	// makes the append fail too, with no_stream expected).
	data := map[string]string{"id": created.ID, "email": created.Email, "name": created.Name}
	if err := a.appendHistory(r.Context(), created.ID, eventstore.NoStream, userCreated, data); err != nil {
		if rerr := a.store.remove(context.WithoutCancel(r.Context()), created.ID); rerr != nil {
			a.log.Error("signup without history not taken back", "user", created.ID, "err", rerr)
		}
		a.storeFailed(w, "signup", err)
		return
	}
	// The signup stands even if the bus event is lost: the welcome mail is
	// not worth failing an account for. A real service would use an outbox.
	if err := a.pub.Publish(r.Context(), userCreated, streamOf(created.ID), data); err != nil {
		a.log.Error("signup event lost", "user", created.ID, "err", err)
	}
	w.Header().Set("Location", "/users/"+created.ID)
	server.WriteJSON(w, http.StatusCreated, created)
}

// appendHistory appends one event to user id's stream; without an event
// store there is no history to keep.
func (a *app) appendHistory(ctx context.Context, id string, expected eventstore.ExpectedVersion, typ string, data any) error {
	if a.es == nil {
		return nil
	}
	e, err := eventstore.NewEvent(typ, data)
	if err != nil {
		return err
	}
	_, err = a.es.Append(ctx, streamOf(id), expected, e)
	return err
}

// update renames an account: the account is loaded from its history, and
// the rename appended at the version it was loaded at, so that two
// concurrent changes cannot both pass unseen (the second is 409). Through
// the gateway a customer may only change their own account (the token's
// subject, which the gateway passes as Nubo-Principal).
func (a *app) update(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if p := r.Header.Get("Nubo-Principal"); p != "" && p != id {
		server.WriteError(w, http.StatusForbidden, "user %s may not change user %s", p, id)
		return
	}
	var in struct {
		Name string `json:"name"`
	}
	if err := server.ReadJSON(w, r, &in); err != nil {
		server.WriteError(w, http.StatusBadRequest, "%v", err)
		return
	}
	if len(in.Name) > 100 {
		server.WriteError(w, http.StatusBadRequest, "a name has at most 100 characters")
		return
	}
	version := int64(-1)
	if a.es != nil {
		acc, v, ok, err := loadAccount(r.Context(), a.es, id)
		if err != nil {
			a.storeFailed(w, "load user", err)
			return
		}
		if !ok {
			server.WriteError(w, http.StatusNotFound, "user %s not found", id)
			return
		}
		version = v
		if acc.Name != in.Name {
			err := a.appendHistory(r.Context(), id, eventstore.Version(version), userRenamed, map[string]string{"name": in.Name})
			var wv *eventstore.WrongVersionError
			if errors.As(err, &wv) {
				server.WriteError(w, http.StatusConflict, "user %s changed meanwhile (now at version %d): load it and try again", id, wv.Current)
				return
			}
			if err != nil {
				a.storeFailed(w, "rename", err)
				return
			}
		}
	}
	if ok, err := a.store.rename(r.Context(), id, in.Name); err != nil {
		a.storeFailed(w, "rename", err)
		return
	} else if !ok {
		server.WriteError(w, http.StatusNotFound, "user %s not found", id)
		return
	}
	a.get(w, r)
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
// stream, named by the ce-subject header or the stream query parameter: the
// account folded from its last snapshot and the events after it.
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
	if a.es == nil {
		server.WriteError(w, http.StatusServiceUnavailable, "no event store: accounts have no history")
		return
	}
	acc, _, ok, err := loadAccount(r.Context(), a.es, id)
	if err != nil {
		a.storeFailed(w, "snapshot", err)
		return
	}
	if !ok {
		server.WriteError(w, http.StatusNotFound, "user %s not found", id)
		return
	}
	server.WriteJSON(w, http.StatusOK, acc)
}
