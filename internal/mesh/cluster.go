package mesh

import (
	"log/slog"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// endpoint is one ready replica as the load balancer and outlier detection
// see it. It must not be copied.
type endpoint struct {
	id, addr string

	active      atomic.Int64 // requests in flight, for least_request
	consecutive atomic.Int32 // consecutive failures, for outlier detection

	// Guarded by cluster.mu.
	ejected       bool
	ejectedAt     time.Time
	unejectedAt   time.Time
	ejectBackoff  int // Envoy's ejection time multiplier
	everUnejected bool
}

// snapshot is an immutable view of a cluster's healthy replicas: ready and
// not ejected, sorted by ID, with the hash ring when the service uses one.
type snapshot struct {
	eps  []*endpoint
	ring []ringPoint
}

type uint64Counter struct{ atomic.Uint64 }

func (c *uint64Counter) next() uint64 { return c.Add(1) - 1 }

// outlierPolicy is Envoy's consecutive-5xx outlier detection.
type outlierPolicy struct {
	consecutive int
	interval    time.Duration
	base        time.Duration
	max         time.Duration
	maxPercent  int
}

// clusterPolicy is the part of a service's policy its cluster keeps.
type clusterPolicy struct {
	ring    bool
	outlier *outlierPolicy
}

// cluster holds a service's replicas across configuration reloads: the
// endpoint snapshot the hot path reads, and the outlier state.
type cluster struct {
	name string
	src  Endpoints
	log  *slog.Logger
	snap atomic.Pointer[snapshot]
	rr   uint64Counter
	od   atomic.Pointer[outlierPolicy]

	mu       sync.Mutex // guards the fields below
	pol      clusterPolicy
	members  map[string]*endpoint // ready replicas by ID
	nEjected int
	timer    *time.Timer
	running  bool
	fetched  bool // Endpoints was read once; until then there is no snapshot
}

func newCluster(name string, src Endpoints, log *slog.Logger) *cluster {
	return &cluster{name: name, src: src, log: log, members: map[string]*endpoint{}}
}

// setPolicy hands the cluster a new policy; running says whether the mesh
// runs, so that the outlier sweep is (re)armed.
func (c *cluster) setPolicy(p clusterPolicy, running bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	ringChanged := c.pol.ring != p.ring
	c.pol = p
	c.od.Store(p.outlier)
	if p.outlier == nil {
		// Without outlier detection nothing stays ejected.
		for _, ep := range c.members {
			ep.ejected, ep.ejectBackoff = false, 0
			ep.consecutive.Store(0)
		}
		c.nEjected = 0
	}
	if c.fetched && (ringChanged || p.outlier == nil) {
		c.publishLocked()
	}
	if running {
		c.armLocked()
	}
}

func (c *cluster) start() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.running = true
	c.armLocked()
}

func (c *cluster) stop() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.running = false
	if c.timer != nil {
		c.timer.Stop()
		c.timer = nil
	}
}

// armLocked schedules the next outlier sweep, or none without outlier
// detection. c.mu must be held.
func (c *cluster) armLocked() {
	if c.timer != nil {
		c.timer.Stop()
		c.timer = nil
	}
	if !c.running || c.pol.outlier == nil {
		return
	}
	c.timer = time.AfterFunc(c.pol.outlier.interval, c.sweep)
}

// current is the snapshot for a request, read from Endpoints the first
// time.
func (c *cluster) current() *snapshot {
	if s := c.snap.Load(); s != nil {
		return s
	}
	c.refresh()
	return c.snap.Load()
}

// refresh reads the replicas from Endpoints and publishes a new snapshot.
// Replicas that stay keep their in-flight counts and outlier state; a
// replica that leaves and comes back starts afresh, as a host removed from
// an Envoy cluster does.
func (c *cluster) refresh() {
	list := c.src.Endpoints(c.name)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.fetched = true
	seen := make(map[string]bool, len(list))
	changed := false
	for _, e := range list {
		if !e.Ready || e.Addr == "" {
			continue
		}
		seen[e.ID] = true
		if ep, ok := c.members[e.ID]; ok && ep.addr == e.Addr {
			continue
		} else if ok && ep.ejected {
			c.nEjected--
		}
		c.members[e.ID] = &endpoint{id: e.ID, addr: e.Addr}
		changed = true
	}
	for id, ep := range c.members {
		if !seen[id] {
			if ep.ejected {
				c.nEjected--
			}
			delete(c.members, id)
			changed = true
		}
	}
	if changed || c.snap.Load() == nil {
		c.publishLocked()
	}
}

// publishLocked builds and stores the snapshot. c.mu must be held.
func (c *cluster) publishLocked() {
	s := &snapshot{eps: make([]*endpoint, 0, len(c.members))}
	for _, ep := range c.members {
		if !ep.ejected {
			s.eps = append(s.eps, ep)
		}
	}
	sort.Slice(s.eps, func(i, j int) bool { return s.eps[i].id < s.eps[j].id })
	if c.pol.ring {
		s.ring = buildRing(s.eps)
	}
	c.snap.Store(s)
}

// report records the result of one attempt on ep for outlier detection: a
// failure is a 5xx or an error the proxy answers with one (connect
// failure, reset, timeout), as Envoy counts consecutive_5xx. It says
// whether this attempt got ep ejected.
func (c *cluster) report(ep *endpoint, failure bool) (ejected bool) {
	od := c.od.Load()
	if od == nil {
		return false
	}
	if !failure {
		// Loading first keeps the cache line shared on the common path.
		if ep.consecutive.Load() != 0 {
			ep.consecutive.Store(0)
		}
		return false
	}
	if int(ep.consecutive.Add(1)) >= od.consecutive {
		return c.eject(ep)
	}
	return false
}

// eject ejects ep unless that would eject more than maxPercent of the
// replicas: Envoy's check is (ejected+1)/replicas <= max_ejection_percent.
func (c *cluster) eject(ep *endpoint) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	od := c.pol.outlier
	if od == nil || ep.ejected || c.members[ep.id] != ep {
		return false
	}
	ep.consecutive.Store(0)
	if 100*(c.nEjected+1) > od.maxPercent*len(c.members) {
		c.log.Debug("mesh: not ejecting replica: max ejection percent reached", "replica", ep.id, "addr", ep.addr, "ejected", c.nEjected, "replicas", len(c.members))
		return false
	}
	now := time.Now()
	ep.ejected, ep.ejectedAt = true, now
	if time.Duration(ep.ejectBackoff)*od.base < od.max+od.base {
		ep.ejectBackoff++
	}
	c.nEjected++
	c.publishLocked()
	c.log.Info("mesh: replica ejected", "replica", ep.id, "addr", ep.addr, "for", ejectionTime(od, ep.ejectBackoff))
	return true
}

func ejectionTime(od *outlierPolicy, backoff int) time.Duration {
	return min(od.base*time.Duration(backoff), od.max)
}

// sweep is Envoy's interval timer: replicas whose ejection time has passed
// come back, and the multiplier of replicas that stayed healthy for an
// interval decreases.
func (c *cluster) sweep() {
	c.mu.Lock()
	defer c.mu.Unlock()
	od := c.pol.outlier
	if !c.running || od == nil {
		return
	}
	now := time.Now()
	changed := false
	for _, ep := range c.members {
		if ep.ejected && now.Sub(ep.ejectedAt) >= ejectionTime(od, ep.ejectBackoff) {
			ep.ejected = false
			ep.unejectedAt, ep.everUnejected = now, true
			ep.consecutive.Store(0)
			c.nEjected--
			changed = true
			c.log.Info("mesh: replica returned", "replica", ep.id, "addr", ep.addr)
			continue
		}
		if !ep.ejected && ep.everUnejected && ep.ejectBackoff > 0 && now.Sub(ep.unejectedAt) >= od.interval {
			ep.ejectBackoff--
		}
	}
	if changed {
		c.publishLocked()
	}
	c.armLocked()
}

// EndpointStatus is one replica as the mesh sees it.
type EndpointStatus struct {
	// ID and Addr identify the replica.
	ID   string `json:"id"`
	Addr string `json:"addr"`
	// Ejected says outlier detection keeps it out of load balancing.
	Ejected bool `json:"ejected,omitempty"`
	// Active counts requests in flight to it.
	Active int64 `json:"active"`
}

// EndpointStatus lists the ready replicas of a service as the load
// balancer sees them, sorted by ID.
func (m *Mesh) EndpointStatus(service string) []EndpointStatus {
	m.mu.Lock()
	c := m.clusters[service]
	m.mu.Unlock()
	if c == nil {
		return nil
	}
	c.current()
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]EndpointStatus, 0, len(c.members))
	for _, ep := range c.members {
		out = append(out, EndpointStatus{ID: ep.id, Addr: ep.addr, Ejected: ep.ejected, Active: ep.active.Load()})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}
