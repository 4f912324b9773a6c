package main

import (
	"context"
	"errors"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// accounts is where users keeps its accounts: shop-db when nubo gives it
// DATABASE_URL, memory otherwise (a test, or go run without nubo).
type accounts interface {
	list(ctx context.Context) ([]user, error)
	// create returns errTaken with the owner's id when the email is used.
	create(ctx context.Context, email, name string) (user, error)
	// get returns ok=false when there is no such account.
	get(ctx context.Context, id string) (u user, ok bool, err error)
	// rename changes an account's name; false when there is no such account.
	rename(ctx context.Context, id, name string) (bool, error)
	// remove takes back an account whose history could not be started.
	remove(ctx context.Context, id string) error
	// applyOrder adds one placed order to a customer's statistics, once per
	// event id: the event store redelivers from its last checkpoint after
	// a crash, so a delivery may come twice. It reports whether it applied.
	applyOrder(ctx context.Context, eventID, userID string, totalCents int64) (bool, error)
}

// errTaken is create's answer for an email that has an account already.
type errTaken struct{ id string }

func (e errTaken) Error() string { return "email is already used by user " + e.id }

// memoryAccounts keeps accounts for one process: one replica, lost on exit.
type memoryAccounts struct {
	mu      sync.Mutex
	byID    map[string]*user
	byEmail map[string]string
	applied map[string]bool
	next    int
}

func newMemoryAccounts() *memoryAccounts {
	return &memoryAccounts{byID: map[string]*user{}, byEmail: map[string]string{}, applied: map[string]bool{}}
}

func (m *memoryAccounts) list(context.Context) ([]user, error) {
	m.mu.Lock()
	out := make([]user, 0, len(m.byID))
	for _, u := range m.byID {
		out = append(out, *u)
	}
	m.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Created.Before(out[j].Created) })
	return out, nil
}

func (m *memoryAccounts) create(_ context.Context, email, name string) (user, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if id, ok := m.byEmail[email]; ok {
		return user{}, errTaken{id}
	}
	m.next++
	u := &user{ID: strconv.Itoa(m.next), Email: email, Name: name, Created: time.Now().UTC()}
	m.byID[u.ID], m.byEmail[email] = u, u.ID
	return *u, nil
}

func (m *memoryAccounts) get(_ context.Context, id string) (user, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	u, ok := m.byID[id]
	if !ok {
		return user{}, false, nil
	}
	return *u, true, nil
}

func (m *memoryAccounts) rename(_ context.Context, id, name string) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	u, ok := m.byID[id]
	if ok {
		u.Name = name
	}
	return ok, nil
}

func (m *memoryAccounts) remove(_ context.Context, id string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if u, ok := m.byID[id]; ok {
		delete(m.byEmail, u.Email)
		delete(m.byID, id)
	}
	return nil
}

func (m *memoryAccounts) applyOrder(_ context.Context, eventID, userID string, totalCents int64) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	u := m.byID[userID]
	if u == nil || m.applied[eventID] {
		return false, nil
	}
	m.applied[eventID] = true
	u.Orders++
	u.SpentCents += totalCents
	return true, nil
}

// schema is the users' tables in shop-db. applied_orders remembers the
// events already folded into the statistics, in the same transaction as
// the fold, so that a redelivery changes nothing.
const schema = `
CREATE TABLE IF NOT EXISTS users (
	id          bigserial PRIMARY KEY,
	email       text NOT NULL UNIQUE,
	name        text NOT NULL DEFAULT '',
	created     timestamptz NOT NULL DEFAULT now(),
	orders      integer NOT NULL DEFAULT 0,
	spent_cents bigint NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS applied_orders (
	event_id text PRIMARY KEY
);`

// postgresAccounts keeps accounts in shop-db, shared by every replica.
type postgresAccounts struct{ pool *pgxpool.Pool }

const userColumns = "id::text, email, name, created, orders, spent_cents"

func scanUser(row pgx.Row) (user, error) {
	var u user
	err := row.Scan(&u.ID, &u.Email, &u.Name, &u.Created, &u.Orders, &u.SpentCents)
	u.Created = u.Created.UTC()
	return u, err
}

func (p postgresAccounts) list(ctx context.Context) ([]user, error) {
	rows, err := p.pool.Query(ctx, "SELECT "+userColumns+" FROM users ORDER BY created, id")
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (user, error) { return scanUser(r) })
}

func (p postgresAccounts) create(ctx context.Context, email, name string) (user, error) {
	u, err := scanUser(p.pool.QueryRow(ctx,
		"INSERT INTO users (email, name) VALUES ($1, $2) RETURNING "+userColumns, email, name))
	if pe := (*pgconn.PgError)(nil); errors.As(err, &pe) && pe.Code == "23505" { // unique_violation
		var id string
		if err := p.pool.QueryRow(ctx, "SELECT id::text FROM users WHERE email = $1", email).Scan(&id); err != nil {
			return user{}, err
		}
		return user{}, errTaken{id}
	}
	return u, err
}

func (p postgresAccounts) get(ctx context.Context, id string) (user, bool, error) {
	n, err := strconv.ParseInt(id, 10, 64)
	if err != nil {
		return user{}, false, nil // not an id this store hands out
	}
	u, err := scanUser(p.pool.QueryRow(ctx, "SELECT "+userColumns+" FROM users WHERE id = $1", n))
	if errors.Is(err, pgx.ErrNoRows) {
		return user{}, false, nil
	}
	return u, err == nil, err
}

func (p postgresAccounts) rename(ctx context.Context, id, name string) (bool, error) {
	n, err := strconv.ParseInt(id, 10, 64)
	if err != nil {
		return false, nil
	}
	tag, err := p.pool.Exec(ctx, "UPDATE users SET name = $2 WHERE id = $1", n, name)
	return tag.RowsAffected() > 0, err
}

func (p postgresAccounts) remove(ctx context.Context, id string) error {
	n, err := strconv.ParseInt(id, 10, 64)
	if err != nil {
		return nil
	}
	_, err = p.pool.Exec(ctx, "DELETE FROM users WHERE id = $1", n)
	return err
}

func (p postgresAccounts) applyOrder(ctx context.Context, eventID, userID string, totalCents int64) (bool, error) {
	n, err := strconv.ParseInt(userID, 10, 64)
	if err != nil {
		return false, nil
	}
	applied := false
	err = pgx.BeginFunc(ctx, p.pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, "UPDATE users SET orders = orders + 1, spent_cents = spent_cents + $2 WHERE id = $1", n, totalCents)
		if err != nil || tag.RowsAffected() == 0 {
			return err
		}
		tag, err = tx.Exec(ctx, "INSERT INTO applied_orders (event_id) VALUES ($1) ON CONFLICT DO NOTHING", eventID)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return errSeen // rolls the UPDATE back
		}
		applied = true
		return nil
	})
	if errors.Is(err, errSeen) {
		return false, nil
	}
	return applied, err
}

var errSeen = errors.New("event applied before")
