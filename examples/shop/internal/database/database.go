// Package database opens the shop's PostgreSQL database: the URL nubo gives a
// service in DATABASE_URL (${databases.shop-db.url}: the service's own role,
// through nubo's allow-list listener, TLS verified against nubo's local CA),
// with a few retries while the server comes up, and the service's tables
// created once, under a lock, however many replicas start together.
package database

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// connectTimeout bounds the wait for the server at start. nubo starts a
// service only once the databases it depends on are ready, so this covers a
// restart of the database, not its first start.
const connectTimeout = 30 * time.Second

// Open connects to url and runs schema (CREATE TABLE IF NOT EXISTS ...
// statements) in one transaction holding an advisory lock named after
// service: two replicas starting at once would otherwise race on the
// catalog (CREATE TABLE IF NOT EXISTS is not safe against itself).
func Open(ctx context.Context, log *slog.Logger, service, url, schema string) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		// The URL carries a password: never print it, nor pgx's error,
		// which may quote it.
		return nil, errors.New("DATABASE_URL is not a PostgreSQL URL")
	}
	cfg.MaxConns = 8
	ctx, cancel := context.WithTimeout(ctx, connectTimeout)
	defer cancel()
	var pool *pgxpool.Pool
	for attempt := 1; ; attempt++ {
		pool, err = pgxpool.NewWithConfig(ctx, cfg)
		if err == nil {
			if err = pool.Ping(ctx); err == nil {
				break
			}
			pool.Close()
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("database %s:%d: %w", cfg.ConnConfig.Host, cfg.ConnConfig.Port, err)
		}
		log.Warn("database not reachable yet", "attempt", attempt, "err", err)
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
	if err := migrate(ctx, pool, service, schema); err != nil {
		pool.Close()
		return nil, err
	}
	return pool, nil
}

func migrate(ctx context.Context, pool *pgxpool.Pool, service, schema string) error {
	h := fnv.New64a()
	h.Write([]byte("shop schema " + service))
	return pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", int64(h.Sum64())); err != nil {
			return fmt.Errorf("schema lock: %w", err)
		}
		if _, err := tx.Exec(ctx, schema); err != nil {
			return fmt.Errorf("schema: %w", err)
		}
		return nil
	})
}
