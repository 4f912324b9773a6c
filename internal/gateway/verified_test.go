package gateway

import (
	"testing"
	"time"
)

// TestVerifiedCache: bounded, least recently used first out, an entry
// gone at its expiry, keyed by the whole token.
func TestVerifiedCache(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	c := newVerifiedCache(2)
	tok := func(sub string, ttl time.Duration) verifiedToken {
		return verifiedToken{res: newAuthResult(sub, "", nil), expires: now.Add(ttl)}
	}
	c.put("a.b.c", tok("a", time.Minute))
	c.put("d.e.f", tok("d", time.Minute))
	if _, ok := c.get("a.b.c", now); !ok { // a is now the most recent
		t.Fatal("a missing")
	}
	c.put("g.h.i", tok("g", time.Minute)) // evicts d, the least recent
	if _, ok := c.get("d.e.f", now); ok {
		t.Error("the least recently used token was kept past the bound")
	}
	if v, ok := c.get("a.b.c", now); !ok || v.res.principal != "a" {
		t.Errorf("a: %v %v", v.res, ok)
	}
	if c.len() != 2 {
		t.Errorf("%d entries, want 2", c.len())
	}
	// A token differing in one byte is not the cached one.
	if _, ok := c.get("a.b.C", now); ok {
		t.Error("a token differing in one byte was found")
	}
	// Expired: gone, and dropped.
	c.put("x.y.z", tok("x", time.Second))
	if _, ok := c.get("x.y.z", now.Add(time.Second)); ok {
		t.Error("an expired token was found")
	}
	if c.len() != 1 {
		t.Errorf("%d entries after the expired one was dropped, want 1", c.len())
	}
}
