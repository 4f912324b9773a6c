package main

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"sync"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// ledger is where orders keeps its orders: shop-db when nubo gives it
// DATABASE_URL, memory otherwise (a test, or go run without nubo).
type ledger interface {
	// nextID reserves the id of an order about to be placed.
	nextID(ctx context.Context) (string, error)
	// save stores a placed order under its Idempotency-Key (empty: none).
	// When another request saved an order under the same key first, it
	// returns that order and false.
	save(ctx context.Context, o order, key string) (order, bool, error)
	get(ctx context.Context, id string) (order, bool, error)
	byKey(ctx context.Context, key string) (order, bool, error)
	// markPaid reports whether there was such an order.
	markPaid(ctx context.Context, id, chargeID string) (bool, error)
}

// firstOrderID is one less than the first order's id, as in the README.
const firstOrderID = 1000

// memoryLedger keeps orders for one process: one replica, lost on exit.
type memoryLedger struct {
	mu     sync.Mutex
	orders map[string]*order
	keys   map[string]string // Idempotency-Key -> order id
	next   int
}

func newMemoryLedger() *memoryLedger {
	return &memoryLedger{orders: map[string]*order{}, keys: map[string]string{}, next: firstOrderID}
}

func (m *memoryLedger) nextID(context.Context) (string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.next++
	return strconv.Itoa(m.next), nil
}

func (m *memoryLedger) save(_ context.Context, o order, key string) (order, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if id, ok := m.keys[key]; ok && key != "" {
		return *m.orders[id], false, nil
	}
	m.orders[o.ID] = &o
	if key != "" {
		m.keys[key] = o.ID
	}
	return o, true, nil
}

func (m *memoryLedger) get(_ context.Context, id string) (order, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	o, ok := m.orders[id]
	if !ok {
		return order{}, false, nil
	}
	return *o, true, nil
}

func (m *memoryLedger) byKey(ctx context.Context, key string) (order, bool, error) {
	m.mu.Lock()
	id, ok := m.keys[key]
	m.mu.Unlock()
	if !ok || key == "" {
		return order{}, false, nil
	}
	return m.get(ctx, id)
}

func (m *memoryLedger) markPaid(_ context.Context, id, chargeID string) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	o, ok := m.orders[id]
	if ok {
		o.Status, o.ChargeID = "paid", chargeID
	}
	return ok, nil
}

// schema is the orders' table in shop-db; ids continue from firstOrderID.
const schema = `
CREATE TABLE IF NOT EXISTS orders (
	id              bigint PRIMARY KEY,
	user_id         text NOT NULL,
	items           jsonb NOT NULL,
	total_cents     bigint NOT NULL,
	currency        text NOT NULL,
	status          text NOT NULL,
	payment_mode    text NOT NULL,
	charge_id       text NOT NULL DEFAULT '',
	created         timestamptz NOT NULL,
	idempotency_key text UNIQUE
);
CREATE SEQUENCE IF NOT EXISTS order_ids START 1001;`

// postgresLedger keeps orders in shop-db, shared by every replica.
type postgresLedger struct{ pool *pgxpool.Pool }

const orderColumns = "id::text, user_id, items, total_cents, currency, status, payment_mode, charge_id, created"

func scanOrder(row pgx.Row) (order, bool, error) {
	var o order
	var items []byte
	err := row.Scan(&o.ID, &o.UserID, &items, &o.TotalCents, &o.Currency, &o.Status, &o.PaymentMode, &o.ChargeID, &o.Created)
	if errors.Is(err, pgx.ErrNoRows) {
		return order{}, false, nil
	}
	if err != nil {
		return order{}, false, err
	}
	o.Created = o.Created.UTC()
	return o, true, json.Unmarshal(items, &o.Items)
}

func (p postgresLedger) nextID(ctx context.Context) (string, error) {
	var id string
	err := p.pool.QueryRow(ctx, "SELECT nextval('order_ids')::text").Scan(&id)
	return id, err
}

func (p postgresLedger) save(ctx context.Context, o order, key string) (order, bool, error) {
	items, err := json.Marshal(o.Items)
	if err != nil {
		return order{}, false, err
	}
	id, err := strconv.ParseInt(o.ID, 10, 64)
	if err != nil {
		return order{}, false, err
	}
	var k *string
	if key != "" {
		k = &key
	}
	_, err = p.pool.Exec(ctx, `INSERT INTO orders (id, user_id, items, total_cents, currency, status, payment_mode, charge_id, created, idempotency_key)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
		id, o.UserID, items, o.TotalCents, o.Currency, o.Status, o.PaymentMode, o.ChargeID, o.Created, k)
	if pe := (*pgconn.PgError)(nil); errors.As(err, &pe) && pe.Code == "23505" && key != "" { // unique_violation
		first, ok, err := p.byKey(ctx, key)
		if err == nil && !ok {
			err = errors.New("an order with this Idempotency-Key vanished")
		}
		return first, false, err
	}
	return o, err == nil, err
}

func (p postgresLedger) get(ctx context.Context, id string) (order, bool, error) {
	n, err := strconv.ParseInt(id, 10, 64)
	if err != nil {
		return order{}, false, nil // not an id this ledger hands out
	}
	return scanOrder(p.pool.QueryRow(ctx, "SELECT "+orderColumns+" FROM orders WHERE id = $1", n))
}

func (p postgresLedger) byKey(ctx context.Context, key string) (order, bool, error) {
	if key == "" {
		return order{}, false, nil
	}
	return scanOrder(p.pool.QueryRow(ctx, "SELECT "+orderColumns+" FROM orders WHERE idempotency_key = $1", key))
}

func (p postgresLedger) markPaid(ctx context.Context, id, chargeID string) (bool, error) {
	n, err := strconv.ParseInt(id, 10, 64)
	if err != nil {
		return false, nil
	}
	tag, err := p.pool.Exec(ctx, "UPDATE orders SET status = 'paid', charge_id = $2 WHERE id = $1", n, chargeID)
	return tag.RowsAffected() > 0, err
}
