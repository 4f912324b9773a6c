package gateway

import (
	"cmp"
	"math"
	"slices"
	"strconv"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// carried is the state that outlives one configuration: token buckets
// (a reload must not hand every client a full bucket), fetched key sets
// and function authorizers' answers. Entries are named by what they
// depend on, so a changed rate or key-set URL starts afresh.
type carried struct {
	mu      sync.Mutex // guards the maps
	buckets map[string]*bucket
	keySets map[string]*keySource
	answers map[string]*answerCache
}

func newCarried() *carried {
	return &carried{buckets: map[string]*bucket{}, keySets: map[string]*keySource{}, answers: map[string]*answerCache{}}
}

func (s *carried) bucket(key string, create func() *bucket) *bucket {
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.buckets[key]
	if b == nil {
		b = create()
		s.buckets[key] = b
	}
	return b
}

func (s *carried) keySet(key string, create func() *keySource) *keySource {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := s.keySets[key]
	if k == nil {
		k = create()
		s.keySets[key] = k
	}
	return k
}

func (s *carried) answerCache(key string, create func() *answerCache) *answerCache {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.answers[key]
	if a == nil {
		a = create()
		s.answers[key] = a
	}
	return a
}

// prune forgets what c does not use.
func (s *carried) prune(c *compiled) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k := range s.buckets {
		if !c.used[k] {
			delete(s.buckets, k)
		}
	}
	for k := range s.keySets {
		if !c.used[k] {
			delete(s.keySets, k)
		}
	}
	for k := range s.answers {
		if !c.used[k] {
			delete(s.answers, k)
		}
	}
}

// bucket is a token bucket of a throttle.
type bucket struct {
	lim  *rate.Limiter
	rate float64
}

// take takes a token at now; when there is none it returns how many whole
// seconds the client should wait (at least 1), for Retry-After.
func (b *bucket) take(now time.Time) (ok bool, retryAfter int) {
	if b.lim.AllowN(now, 1) {
		return true, 0
	}
	missing := 1 - b.lim.TokensAt(now)
	wait := int(math.Ceil(missing / b.rate))
	return false, max(wait, 1)
}

func retryAfterHeader(s int) string { return strconv.Itoa(s) }

func sortedKeys[M ~map[string]V, V any](m M) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, cmp.Compare[string])
	return keys
}
