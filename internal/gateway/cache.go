package gateway

import (
	"container/list"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"
)

// respCache is a stage's cache of answers: least recently used entries go
// first once the entries' sizes pass max. With encrypted, entries are kept
// sealed with AES-GCM under the gateway's per-process key, and keys as
// HMAC-SHA256 digests, so that a memory dump holds neither answers nor the
// parameters and principals they were for.
type respCache struct {
	g         *Gateway
	max       int64
	encrypted bool

	mu    sync.Mutex // guards the fields below
	size  int64
	ll    *list.List // of *cacheEntry, most recently used first
	items map[string]*list.Element
}

type cacheEntry struct {
	key     string
	expires time.Time
	stored  time.Time
	size    int64
	// Plain entries hold the answer as it is; sealed ones in sealed.
	status int
	header http.Header
	body   []byte
	sealed []byte
}

// entryOverhead approximates an entry's own memory besides its bytes.
const entryOverhead = 128

func newRespCache(max int64, encrypted bool, g *Gateway) *respCache {
	return &respCache{g: g, max: max, encrypted: encrypted, ll: list.New(), items: map[string]*list.Element{}}
}

// cachedAnswer is an answer read from the cache.
type cached struct {
	status int
	header http.Header
	body   []byte
	age    time.Duration
}

// key turns a cache key into the map's key: itself, or its HMAC when the
// cache is encrypted.
func (c *respCache) key(k string) string {
	if !c.encrypted {
		return k
	}
	m := hmac.New(sha256.New, c.g.hashKey)
	m.Write([]byte(k))
	return string(m.Sum(nil))
}

func (c *respCache) get(k string, now time.Time) (cached, bool) {
	k = c.key(k)
	c.mu.Lock()
	el := c.items[k]
	if el == nil {
		c.mu.Unlock()
		return cached{}, false
	}
	e := el.Value.(*cacheEntry)
	if !now.Before(e.expires) {
		c.removeLocked(el)
		c.mu.Unlock()
		return cached{}, false
	}
	c.ll.MoveToFront(el)
	c.mu.Unlock()
	out := cached{status: e.status, header: e.header, body: e.body, age: now.Sub(e.stored)}
	if e.sealed != nil {
		var err error
		if out.status, out.header, out.body, err = c.open(e.sealed, k); err != nil {
			c.g.log.Error("gateway: cache entry does not decrypt", "err", err)
			return cached{}, false
		}
	}
	return out, true
}

// put stores an answer; header and body must not change afterwards.
func (c *respCache) put(k string, status int, header http.Header, body []byte, ttl time.Duration, now time.Time) {
	k = c.key(k)
	e := &cacheEntry{key: k, expires: now.Add(ttl), stored: now, status: status, header: header, body: body}
	e.size = int64(len(k)+len(body)) + headerSize(header) + entryOverhead
	if c.encrypted {
		e.sealed = c.seal(status, header, body, k)
		e.header, e.body = nil, nil
		e.size = int64(len(k)+len(e.sealed)) + entryOverhead
	}
	if e.size > c.max {
		return // would evict everything and still not fit
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if el := c.items[k]; el != nil {
		c.removeLocked(el)
	}
	c.items[k] = c.ll.PushFront(e)
	c.size += e.size
	for c.size > c.max {
		c.removeLocked(c.ll.Back())
	}
}

// removeLocked drops an entry; c.mu must be held.
func (c *respCache) removeLocked(el *list.Element) {
	e := c.ll.Remove(el).(*cacheEntry)
	delete(c.items, e.key)
	c.size -= e.size
}

// stats returns the number of entries and their size.
func (c *respCache) stats() (entries int, size int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.items), c.size
}

func headerSize(h http.Header) int64 {
	var n int64
	for k, vs := range h {
		n += int64(len(k))
		for _, v := range vs {
			n += int64(len(v)) + 16
		}
	}
	return n
}

// seal encodes and encrypts an answer; the entry's key is the additional
// data, so that an entry cannot be served under another key.
func (c *respCache) seal(status int, header http.Header, body []byte, key string) []byte {
	plain := make([]byte, 0, len(body)+int(headerSize(header))+16)
	plain = binary.AppendUvarint(plain, uint64(status))
	names := sortedKeys(header)
	plain = binary.AppendUvarint(plain, uint64(len(names)))
	for _, name := range names {
		plain = appendString(plain, name)
		plain = binary.AppendUvarint(plain, uint64(len(header[name])))
		for _, v := range header[name] {
			plain = appendString(plain, v)
		}
	}
	plain = append(plain, body...)
	nonce := make([]byte, c.g.seal.NonceSize(), c.g.seal.NonceSize()+len(plain)+c.g.seal.Overhead())
	randRead(nonce)
	return c.g.seal.Seal(nonce, nonce, plain, []byte(key))
}

func (c *respCache) open(sealed []byte, key string) (int, http.Header, []byte, error) {
	ns := c.g.seal.NonceSize()
	if len(sealed) < ns {
		return 0, nil, nil, errors.New("entry too short")
	}
	plain, err := c.g.seal.Open(nil, sealed[:ns], sealed[ns:], []byte(key))
	if err != nil {
		return 0, nil, nil, err
	}
	r := reader{b: plain}
	status := int(r.uvarint())
	n := int(r.uvarint())
	h := make(http.Header, n)
	for range n {
		name := r.string()
		m := int(r.uvarint())
		vals := make([]string, 0, m)
		for range m {
			vals = append(vals, r.string())
		}
		h[name] = vals
	}
	if r.err != nil {
		return 0, nil, nil, r.err
	}
	return status, h, r.b, nil
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

type reader struct {
	b   []byte
	err error
}

func (r *reader) uvarint() uint64 {
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.err = errors.New("entry is corrupt")
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) string() string {
	n := r.uvarint()
	if r.err != nil || uint64(len(r.b)) < n {
		r.err = errors.New("entry is corrupt")
		return ""
	}
	s := string(r.b[:n])
	r.b = r.b[n:]
	return s
}

// cacheKeyPart is one of a route's cache keys.
type cacheKeyPart struct {
	kind string // path, query or header
	name string
}

func parseCacheKey(k string, params []string) (cacheKeyPart, error) {
	kind, name, _ := strings.Cut(k, ".")
	switch {
	case name == "" || (kind != "path" && kind != "query" && kind != "header"):
		return cacheKeyPart{}, fmt.Errorf("%q: write path.NAME, query.NAME or header.NAME", k)
	case kind == "path" && !slices.Contains(params, name):
		return cacheKeyPart{}, fmt.Errorf("%q: the route has no parameter %q", k, name)
	case kind == "header":
		name = http.CanonicalHeaderKey(name)
	}
	return cacheKeyPart{kind: kind, name: name}, nil
}

// cacheKey is the key of x's answer: the stage, method, route and path
// always; the listed keys, or else the whole query; and the principal on
// authorized routes, so that one user's answer never reaches another.
func (x *exchange) cacheKey() string {
	var b strings.Builder
	b.Grow(64 + len(x.rel))
	b.WriteString(x.stage.name)
	b.WriteByte(0)
	b.WriteString(x.r.Method)
	b.WriteByte(0)
	b.WriteString(x.route.path)
	b.WriteByte(0)
	b.WriteString(x.rel)
	b.WriteByte(0)
	if len(x.rs.cacheKeys) == 0 {
		b.WriteString(x.r.URL.RawQuery)
	} else {
		var query map[string][]string
		for _, p := range x.rs.cacheKeys {
			b.WriteString(p.kind)
			b.WriteByte('.')
			b.WriteString(p.name)
			b.WriteByte('=')
			switch p.kind {
			case "path":
				b.WriteString(x.route.param(x.vals, p.name))
			case "query":
				if query == nil {
					query = x.r.URL.Query()
				}
				writeList(&b, query[p.name])
			case "header":
				writeList(&b, x.r.Header[p.name])
			}
			b.WriteByte(0)
		}
	}
	if x.auth != nil {
		b.WriteString(x.route.authName)
		b.WriteByte(0)
		b.WriteString(x.auth.principal)
	}
	return b.String()
}

func writeList(b *strings.Builder, vals []string) {
	for i, v := range vals {
		if i > 0 {
			b.WriteByte(1)
		}
		b.WriteString(v)
	}
}

// cacheable says whether an answer may be stored: a 200 that the backend
// did not mark private or no-store, sets no cookie and does not vary on
// everything.
func cacheable(status int, h http.Header) bool {
	if status != http.StatusOK || len(h["Set-Cookie"]) > 0 {
		return false
	}
	for _, v := range h["Cache-Control"] {
		lv := strings.ToLower(v)
		if strings.Contains(lv, "no-store") || strings.Contains(lv, "private") {
			return false
		}
	}
	for _, v := range h["Vary"] {
		if strings.TrimSpace(v) == "*" {
			return false
		}
	}
	return true
}

// wantsFresh says whether a request asks to bypass the cache.
func wantsFresh(h http.Header) bool {
	for _, v := range h["Cache-Control"] {
		lv := strings.ToLower(v)
		if strings.Contains(lv, "no-cache") || strings.Contains(lv, "max-age=0") {
			return true
		}
	}
	return false
}

// randRead fills b from the system's random source (which does not fail).
func randRead(b []byte) { _, _ = rand.Read(b) }
