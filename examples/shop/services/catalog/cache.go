package main

import (
	"context"
	"errors"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// cacheTTL is how long a listing stays in the cache. The products are
// compiled in, so a listing never goes stale here; a catalog reading a
// database would pick this as its staleness bound.
const cacheTTL = 5 * time.Minute

// cacheTimeout bounds one cache call: a slow cache must not slow the
// catalog, which can always answer without it.
const cacheTimeout = 100 * time.Millisecond

// listingCache keeps the catalog's JSON listings in Redis (the `cache`
// database nubo runs, whose URL is CACHE_URL), shared by every replica of
// both versions; the keys name the version and the currency. A nil
// *listingCache caches nothing.
type listingCache struct {
	rdb *redis.Client
	log *slog.Logger
	// down remembers that the last call failed, so that a cache that is
	// away logs once when it goes and once when it comes back.
	down atomic.Bool
}

// newListingCache connects to url; an invalid URL is an error, an
// unreachable server is not (the catalog answers without it meanwhile).
func newListingCache(url string, log *slog.Logger) (*listingCache, error) {
	opt, err := redis.ParseURL(url)
	if err != nil {
		// The URL carries a password: neither it nor the parser's error,
		// which may quote it, is printed.
		return nil, errors.New("CACHE_URL is not a Redis URL")
	}
	opt.DialTimeout, opt.ReadTimeout, opt.WriteTimeout = time.Second, cacheTimeout, cacheTimeout
	return &listingCache{rdb: redis.NewClient(opt), log: log}, nil
}

// get returns the cached listing under key, if any.
func (c *listingCache) get(ctx context.Context, key string) ([]byte, bool) {
	if c == nil {
		return nil, false
	}
	ctx, cancel := context.WithTimeout(ctx, cacheTimeout)
	defer cancel()
	b, err := c.rdb.Get(ctx, key).Bytes()
	if errors.Is(err, redis.Nil) {
		c.result(nil)
		return nil, false
	}
	c.result(err)
	return b, err == nil
}

// set caches a listing under key for cacheTTL.
func (c *listingCache) set(ctx context.Context, key string, b []byte) {
	if c == nil {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, cacheTimeout)
	defer cancel()
	c.result(c.rdb.Set(ctx, key, b, cacheTTL).Err())
}

func (c *listingCache) result(err error) {
	switch {
	case err != nil && !c.down.Swap(true):
		c.log.Warn("cache unavailable: answering without it", "err", err)
	case err == nil && c.down.Swap(false):
		c.log.Info("cache available again")
	}
}

func (c *listingCache) close() {
	if c != nil {
		_ = c.rdb.Close()
	}
}
