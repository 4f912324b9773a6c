package gateway

import (
	"container/list"
	"sync"
	"time"
)

// verifiedCache remembers verified tokens, so that a client sending the
// same token again costs a map lookup, not a signature check. It is keyed
// by the whole token (a token differing in any byte is another entry, and
// only tokens whose signature verified get in), bounded to max entries,
// evicting the least recently used, and an entry ends at its expiry.
type verifiedCache struct {
	mu  sync.Mutex
	max int
	m   map[string]*list.Element
	lru list.List // of *verifiedEntry, most recently used first
}

type verifiedEntry struct {
	token string
	v     verifiedToken
}

func newVerifiedCache(max int) *verifiedCache {
	return &verifiedCache{max: max, m: map[string]*list.Element{}}
}

// get returns the entry of token unless it has expired at now (then it is
// dropped).
func (c *verifiedCache) get(token string, now time.Time) (verifiedToken, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[token]
	if !ok {
		return verifiedToken{}, false
	}
	ent := e.Value.(*verifiedEntry)
	if !now.Before(ent.v.expires) {
		c.lru.Remove(e)
		delete(c.m, token)
		return verifiedToken{}, false
	}
	c.lru.MoveToFront(e)
	return ent.v, true
}

// put remembers v for token, evicting the least recently used entries
// beyond max.
func (c *verifiedCache) put(token string, v verifiedToken) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.m[token]; ok {
		e.Value.(*verifiedEntry).v = v
		c.lru.MoveToFront(e)
		return
	}
	c.m[token] = c.lru.PushFront(&verifiedEntry{token: token, v: v})
	for c.lru.Len() > c.max {
		old := c.lru.Back()
		c.lru.Remove(old)
		delete(c.m, old.Value.(*verifiedEntry).token)
	}
}

// len is the number of entries, for tests.
func (c *verifiedCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lru.Len()
}
