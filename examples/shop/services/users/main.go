// Command users is the shop's account service. It keeps accounts in memory
// (so nubo.yaml runs it as one replica; a real one would use shop-db, whose
// URL it gets in DATABASE_URL), announces each signup as a
// com.shop.user.created event, folds placed orders into per-customer
// statistics (the event store's customer-stats projection), starts each
// account's user-ID stream in the event store and answers the event store's
// snapshot requests for user-* streams. The accounts themselves stay in
// memory: they are not yet folded from their streams.
package main

import (
	"log/slog"
	"net/http"
	"net/mail"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nubo-dev/nubo/examples/shop/internal/cloudevent"
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

type store struct {
	mu      sync.Mutex
	byID    map[string]*user
	byEmail map[string]string
	next    int
}

type app struct {
	log   *slog.Logger
	pub   *cloudevent.Publisher
	store store
}

func main() {
	log := server.NewLogger()
	a := &app{log: log, pub: cloudevent.NewPublisher("users", log)}
	a.store.byID, a.store.byEmail = map[string]*user{}, map[string]string{}

	mux := http.NewServeMux()
	mux.HandleFunc("GET /users", a.list)
	mux.HandleFunc("POST /users", a.create)
	mux.HandleFunc("GET /users/{id}", a.get)
	mux.HandleFunc("POST /projections/customer-stats", a.project)
	mux.HandleFunc("POST /snapshot", a.snapshot)
	if err := server.Run(log, defaultPort, mux, "database", os.Getenv("DATABASE_URL") != "", "signup", os.Getenv("FEATURE_SIGNUP") != "false"); err != nil {
		log.Error("users stopped", "err", err)
		os.Exit(1)
	}
}

func (a *app) list(w http.ResponseWriter, _ *http.Request) {
	a.store.mu.Lock()
	out := make([]user, 0, len(a.store.byID))
	for _, u := range a.store.byID {
		out = append(out, *u)
	}
	a.store.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Created.Before(out[j].Created) })
	server.WriteJSON(w, http.StatusOK, out)
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
	a.store.mu.Lock()
	if id, ok := a.store.byEmail[email]; ok {
		a.store.mu.Unlock()
		server.WriteError(w, http.StatusConflict, "email %s is already used by user %s", email, id)
		return
	}
	a.store.next++
	u := &user{ID: strconv.Itoa(a.store.next), Email: email, Name: in.Name, Created: time.Now().UTC()}
	a.store.byID[u.ID], a.store.byEmail[email] = u, u.ID
	created := *u
	a.store.mu.Unlock()

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
	u, ok := a.lookup(r.PathValue("id"))
	if !ok {
		server.WriteError(w, http.StatusNotFound, "user %s not found", r.PathValue("id"))
		return
	}
	// The statistics move as the projection delivers: no cache may keep
	// an older answer (the gateway's stage caches GETs for 60 s).
	w.Header().Set("Cache-Control", "no-store")
	server.WriteJSON(w, http.StatusOK, u)
}

func (a *app) lookup(id string) (user, bool) {
	a.store.mu.Lock()
	defer a.store.mu.Unlock()
	u, ok := a.store.byID[id]
	if !ok {
		return user{}, false
	}
	return *u, true
}

// project applies com.shop.order.placed events to the customers' statistics.
// The event store delivers them in batches and redelivers after a crash from
// its last checkpoint, so a real read model would remember applied event ids.
func (a *app) project(w http.ResponseWriter, r *http.Request) {
	events, _, err := cloudevent.Read(r)
	if err != nil {
		server.WriteError(w, http.StatusBadRequest, "%v", err)
		return
	}
	applied, skipped := 0, 0
	a.store.mu.Lock()
	defer a.store.mu.Unlock()
	for _, e := range events {
		var order struct {
			UserID     string `json:"userId"`
			TotalCents int64  `json:"totalCents"`
		}
		var u *user
		if e.Type == "com.shop.order.placed" && e.DataAs(&order) == nil {
			u = a.store.byID[order.UserID]
		}
		if u == nil {
			skipped++
			continue
		}
		u.Orders++
		u.SpentCents += order.TotalCents
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
	u, ok := a.lookup(id)
	if !ok {
		server.WriteError(w, http.StatusNotFound, "user %s not found", id)
		return
	}
	server.WriteJSON(w, http.StatusOK, u)
}
