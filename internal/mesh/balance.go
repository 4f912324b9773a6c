package mesh

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"sort"
	"strconv"
	"time"

	"github.com/nubo-dev/nubo/internal/spec"
)

type lbAlg uint8

const (
	lbRoundRobin lbAlg = iota
	lbLeastRequest
	lbRandom
	lbRingHash
)

// lbPolicy is a service's load balancing: the algorithm and, for ring
// hash, where the hash key comes from.
type lbPolicy struct {
	alg       lbAlg
	header    string // canonical header name hashed, or ""
	cookie    string // cookie name hashed, or ""
	cookieTTL time.Duration
}

func compileLB(lb spec.LoadBalancing) (lbPolicy, error) {
	var p lbPolicy
	switch lb.Algorithm {
	case "", "round_robin":
		p.alg = lbRoundRobin
		if lb.Algorithm == "" && lb.Sticky != nil {
			p.alg = lbRingHash
		}
	case "least_request":
		p.alg = lbLeastRequest
	case "random":
		p.alg = lbRandom
	case "ring_hash":
		p.alg = lbRingHash
	default:
		return p, fmt.Errorf("loadBalancing.algorithm %q: want round_robin, least_request, random or ring_hash", lb.Algorithm)
	}
	if s := lb.Sticky; s != nil {
		// Sticky implies ring_hash, as the reference says; nubo validate
		// warns when another algorithm is written beside it.
		p.alg = lbRingHash
		switch {
		case s.Header != "" && s.Cookie != nil:
			return p, errors.New("loadBalancing.sticky: set header or cookie, not both")
		case s.Header != "":
			p.header = canonicalHeader(s.Header)
		case s.Cookie != nil && s.Cookie.Name != "":
			p.cookie, p.cookieTTL = s.Cookie.Name, s.Cookie.TTL.Duration
		default:
			return p, errors.New("loadBalancing.sticky: set header or cookie")
		}
	}
	return p, nil
}

// hashKey computes the ring hash key of a request. Without a key the
// replica is random, as in Envoy. With a sticky cookie that the request
// lacks, a new value is made up and setCookie is the Set-Cookie to add to
// the response, so that the client sticks from its next request on.
func (p *lbPolicy) hashKey(r *http.Request) (key uint64, ok bool, setCookie string) {
	switch {
	case p.header != "":
		if v := r.Header[p.header]; len(v) > 0 {
			return hashString(v[0]), true, ""
		}
	case p.cookie != "":
		if c, err := r.Cookie(p.cookie); err == nil && c.Value != "" {
			return hashString(c.Value), true, ""
		}
		v := strconv.FormatUint(rand.Uint64(), 16)
		ck := &http.Cookie{Name: p.cookie, Value: v, Path: "/", HttpOnly: true}
		if p.cookieTTL > 0 {
			ck.MaxAge = int(p.cookieTTL / time.Second)
		}
		return hashString(v), true, ck.String()
	}
	return 0, false, ""
}

// hashString is FNV-1a followed by a 64-bit finalizer, so that keys
// differing in one character land far apart on the ring.
func hashString(s string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= 1099511628211
	}
	return mix64(h)
}

func mix64(h uint64) uint64 {
	h ^= h >> 33
	h *= 0xff51afd7ed558ccd
	h ^= h >> 33
	h *= 0xc4ceb9fe1a85ec53
	h ^= h >> 33
	return h
}

func randIntN(n int) int { return rand.IntN(n) }

// chance reports true with the given percent probability.
func chance(percent float64) bool {
	return percent >= 100 || (percent > 0 && rand.Float64()*100 < percent)
}

// minRingSize is Envoy's minimum_ring_size default: each replica gets
// about minRingSize/n points.
const minRingSize = 1024

type ringPoint struct {
	hash uint64
	ep   *endpoint
}

func buildRing(eps []*endpoint) []ringPoint {
	if len(eps) == 0 {
		return nil
	}
	per := (minRingSize + len(eps) - 1) / len(eps)
	ring := make([]ringPoint, 0, per*len(eps))
	for _, ep := range eps {
		for i := 0; i < per; i++ {
			ring = append(ring, ringPoint{hash: hashString(ep.id + "_" + strconv.Itoa(i)), ep: ep})
		}
	}
	sort.Slice(ring, func(i, j int) bool { return ring[i].hash < ring[j].hash })
	return ring
}

// pick chooses a healthy replica of s for one attempt, avoiding those
// already tried by the request when another is available (Istio's
// previous_hosts retry predicate).
func (s *snapshot) pick(alg lbAlg, rr *uint64Counter, key uint64, hasKey bool, avoid []*endpoint) *endpoint {
	n := len(s.eps)
	switch n {
	case 0:
		return nil
	case 1:
		return s.eps[0]
	}
	if alg == lbRingHash && hasKey && len(s.ring) > 0 {
		return s.ringPick(key, avoid)
	}
	var ep *endpoint
	// A few tries to find one not tried yet; Envoy's host selection
	// retries similarly before it gives up and reuses a host.
	for try := 0; try < 3; try++ {
		switch alg {
		case lbRoundRobin:
			ep = s.eps[rr.next()%uint64(n)]
		case lbLeastRequest:
			i := rand.IntN(n)
			j := rand.IntN(n - 1)
			if j >= i {
				j++
			}
			a, b := s.eps[i], s.eps[j]
			ep = a
			if b.active.Load() < a.active.Load() {
				ep = b
			}
		default: // random, and ring hash without a key
			ep = s.eps[rand.IntN(n)]
		}
		if !tried(avoid, ep) {
			return ep
		}
	}
	return ep
}

func (s *snapshot) ringPick(key uint64, avoid []*endpoint) *endpoint {
	i := sort.Search(len(s.ring), func(i int) bool { return s.ring[i].hash >= key })
	for k := 0; k < len(s.ring); k++ {
		ep := s.ring[(i+k)%len(s.ring)].ep
		if !tried(avoid, ep) {
			return ep
		}
	}
	return s.ring[i%len(s.ring)].ep
}

func tried(avoid []*endpoint, ep *endpoint) bool {
	for _, a := range avoid {
		if a == ep {
			return true
		}
	}
	return false
}
