package eventstore

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/nubo-dev/nubo/internal/apitype"
	"github.com/nubo-dev/nubo/internal/cebinding"
	"github.com/nubo-dev/nubo/internal/spec"
)

// SnapshotRequest is the data of the CloudEvent (type SnapshotEventType,
// subject the stream) a snapshot's handler is asked with: the aggregate of
// Stream, at Version. A service gets it in binary mode (ce-* headers, this
// JSON as the body), a function through its pool. The answer's body (2xx,
// JSON) is the state; a Nubo-Snapshot-Version header says which version it
// covers when not the one asked (the handler read newer events).
type SnapshotRequest struct {
	Stream  string `json:"stream"`
	Version int64  `json:"version"`
}

// SnapshotEventType is the CloudEvent type of a snapshot request.
const SnapshotEventType = "nubo.eventstore.snapshot"

// snapshotVersionHeader is the answer's header that overrides the version.
const snapshotVersionHeader = "Nubo-Snapshot-Version"

// snapshotter takes the snapshots of the spec: it follows the new events
// of the matching streams and asks a handler for a stream's state after
// `every` events or `frequency` since its last snapshot, whichever comes
// first. Counts start at zero when the store starts: events appended
// while nubo was down do not count.
type snapshotter struct {
	s       *Store
	configs []*snapConfig // sorted by name
	kv      jetstream.KeyValue
	group   sync.WaitGroup
}

type snapConfig struct {
	name string
	spec *spec.Snapshot
}

// pending is a stream's events since its last snapshot.
type pending struct {
	count   int
	version int64
	since   time.Time // the last snapshot, or the first event counted
}

func newSnapshotter(s *Store, specs map[string]*spec.Snapshot) (*snapshotter, error) {
	sn := &snapshotter{s: s}
	for name, c := range specs {
		if c.Handler.Kind != spec.TargetFunction && c.Handler.Kind != spec.TargetService {
			return nil, fmt.Errorf("eventstore: snapshot %q: handler %s: want function:NAME or service:NAME/path", name, c.Handler)
		}
		if c.Every <= 0 && c.Frequency.Duration <= 0 {
			return nil, fmt.Errorf("eventstore: snapshot %q: needs every or frequency", name)
		}
		if s.cfg.Handlers == nil {
			return nil, fmt.Errorf("eventstore: snapshot %q: no way to reach handlers", name)
		}
		sn.configs = append(sn.configs, &snapConfig{name: name, spec: c})
	}
	slices.SortFunc(sn.configs, func(a, b *snapConfig) int { return cmpString(a.name, b.name) })
	return sn, nil
}

// bucketTTL is how long the bucket keeps a snapshot: the longest
// retention of the spec's snapshots (JetStream's TTL is the bucket's), 0
// (forever) when one of them keeps them forever.
func (sn *snapshotter) bucketTTL() time.Duration {
	var ttl time.Duration
	for _, c := range sn.configs {
		if c.spec.Retention.Duration <= 0 {
			return 0
		}
		ttl = max(ttl, c.spec.Retention.Duration)
	}
	return ttl
}

func (sn *snapshotter) start(ctx context.Context) error {
	if len(sn.configs) == 0 {
		return nil
	}
	cfg := jetstream.KeyValueConfig{Bucket: sn.s.n.snapshots(), History: 1, Storage: jetstream.FileStorage, TTL: sn.bucketTTL(), Compression: sn.s.es.Compression}
	kv, err := sn.s.js.CreateOrUpdateKeyValue(ctx, cfg)
	if err != nil {
		return fmt.Errorf("eventstore: snapshot bucket %s: %w", cfg.Bucket, err)
	}
	sn.kv = kv
	for _, c := range sn.configs {
		// From the end: only events appended from now on count.
		st, err := sn.s.state(ctx)
		if err != nil {
			return err
		}
		sub, err := sn.s.Subscribe(ctx, st.LastSeq+1, c.spec.Streams, nil)
		if err != nil {
			return fmt.Errorf("eventstore: snapshot %q: %w", c.name, err)
		}
		sn.group.Go(func() {
			defer sub.Close()
			sn.run(sn.s.ctx, c, sub)
		})
	}
	return nil
}

func (sn *snapshotter) stop(context.Context) {
	sn.s.cancel()
	sn.group.Wait()
}

// tick is how often frequency is checked.
func tick(freq time.Duration) time.Duration {
	if freq <= 0 {
		return time.Hour
	}
	return max(min(freq/4, time.Second), 10*time.Millisecond)
}

func (sn *snapshotter) run(ctx context.Context, c *snapConfig, sub *Subscription) {
	streams := map[string]*pending{}
	ticker := time.NewTicker(tick(c.spec.Frequency.Duration))
	defer ticker.Stop()
	events := make(chan apitype.RecordedEvent)
	go func() {
		defer close(events)
		for {
			ev, err := sub.Next(ctx)
			if err != nil {
				return
			}
			select {
			case events <- ev:
			case <-ctx.Done():
				return
			}
		}
	}()
	for {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-events:
			if !ok {
				return
			}
			p := streams[ev.Stream]
			if p == nil {
				p = &pending{since: time.Now()}
				streams[ev.Stream] = p
			}
			p.count++
			p.version = ev.Version
			if c.spec.Every > 0 && p.count >= c.spec.Every {
				sn.take(ctx, c, ev.Stream, p)
			}
		case now := <-ticker.C:
			if c.spec.Frequency.Duration <= 0 {
				continue
			}
			for stream, p := range streams {
				if p.count > 0 && now.Sub(p.since) >= c.spec.Frequency.Duration {
					sn.take(ctx, c, stream, p)
				}
			}
		}
	}
}

// take asks the handler for stream's state and stores it; a failure is
// logged and counted, and the next event or tick tries again.
func (sn *snapshotter) take(ctx context.Context, c *snapConfig, stream string, p *pending) {
	snap, err := sn.ask(ctx, c, stream, p.version)
	if err == nil {
		err = sn.put(ctx, snap)
	}
	if err != nil {
		if ctx.Err() == nil {
			sn.s.metrics.snapshots.WithLabelValues(c.name, "failed").Inc()
			sn.s.log.Warn("snapshot failed", "snapshot", c.name, "stream", stream, "version", p.version, "err", err)
		}
		return
	}
	sn.s.metrics.snapshots.WithLabelValues(c.name, "stored").Inc()
	p.count, p.since = 0, time.Now()
}

func (sn *snapshotter) ask(ctx context.Context, c *snapConfig, stream string, version int64) (apitype.Snapshot, error) {
	data, _ := json.Marshal(SnapshotRequest{Stream: stream, Version: version})
	ctx, cancel := context.WithTimeout(ctx, handlerTimeout)
	defer cancel()
	ce := event.New()
	ce.SetID(fmt.Sprintf("snapshot/%s/%d", stream, version))
	ce.SetType(SnapshotEventType)
	ce.SetSource("/eventstore/" + stream)
	ce.SetSubject(stream)
	ce.SetTime(time.Now())
	if err := ce.SetData(event.ApplicationJSON, json.RawMessage(data)); err != nil {
		return apitype.Snapshot{}, err
	}
	var header http.Header
	var body []byte
	switch c.spec.Handler.Kind {
	case spec.TargetService:
		h := http.Header{"Content-Type": {event.ApplicationJSON}}
		for k, v := range map[string]string{"specversion": ce.SpecVersion(), "id": ce.ID(), "type": ce.Type(), "source": ce.Source(), "subject": ce.Subject(), "time": ce.Time().UTC().Format(time.RFC3339Nano)} {
			h.Set("Ce-"+k, cebinding.EncodeValue(v))
		}
		hd, b, err := sn.s.postService(ctx, c.spec.Handler, h, data)
		if err != nil {
			return apitype.Snapshot{}, err
		}
		header, body = hd, b
	default:
		res, err := sn.s.cfg.Handlers.Invoke(ctx, c.spec.Handler.Name, ce)
		if err != nil {
			return apitype.Snapshot{}, fmt.Errorf("function %q: %w", c.spec.Handler.Name, err)
		}
		if res.Status/100 != 2 {
			return apitype.Snapshot{}, fmt.Errorf("function %q: status %d", c.spec.Handler.Name, res.Status)
		}
		header, body = res.Header, res.Body
	}
	if !json.Valid(body) || len(bytes.TrimSpace(body)) == 0 {
		return apitype.Snapshot{}, fmt.Errorf("%s answered no JSON state", c.spec.Handler)
	}
	snap := apitype.Snapshot{Stream: stream, Version: version, Time: time.Now().UTC(), State: json.RawMessage(bytes.TrimSpace(body))}
	if v := header.Get(snapshotVersionHeader); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			return apitype.Snapshot{}, fmt.Errorf("%s: %s %q is not a version", c.spec.Handler, snapshotVersionHeader, v)
		}
		snap.Version = n
	}
	return snap, nil
}

// snapshotKey is a stream's key in the bucket: stream names may hold
// characters KV keys do not.
func snapshotKey(stream string) string {
	return "s." + base64.RawURLEncoding.EncodeToString([]byte(stream))
}

// put stores a snapshot, sealed when the store encrypts.
func (sn *snapshotter) put(ctx context.Context, snap apitype.Snapshot) error {
	data, err := json.Marshal(snap)
	if err != nil {
		return err
	}
	if a := sn.s.aead; a != nil {
		nonce := make([]byte, a.NonceSize(), a.NonceSize()+len(data)+a.Overhead())
		if _, err := rand.Read(nonce); err != nil {
			return err
		}
		data = append([]byte(encAESGCM+":"), a.Seal(nonce, nonce, data, []byte("snapshot\x00"+snap.Stream))...)
	}
	_, err = sn.kv.Put(ctx, snapshotKey(snap.Stream), data)
	return err
}

// LatestSnapshot returns the newest snapshot of stream: a reader loads it
// and then reads the stream from its Version+1.
func (s *Store) LatestSnapshot(ctx context.Context, stream string) (apitype.Snapshot, error) {
	if err := checkStreamName(stream); err != nil {
		return apitype.Snapshot{}, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	kv := s.snapshots.kv
	if kv == nil {
		return apitype.Snapshot{}, fmt.Errorf("%w: no snapshots are configured (eventStore.snapshots)", ErrNotFound)
	}
	e, err := kv.Get(ctx, snapshotKey(stream))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return apitype.Snapshot{}, fmt.Errorf("%w: stream %q has no snapshot", ErrNotFound, stream)
	}
	if err != nil {
		return apitype.Snapshot{}, fmt.Errorf("stream %q: read snapshot: %w", stream, err)
	}
	data := e.Value()
	if prefix := []byte(encAESGCM + ":"); len(data) > len(prefix) && string(data[:len(prefix)]) == string(prefix) {
		a := s.aead
		if a == nil {
			return apitype.Snapshot{}, fmt.Errorf("stream %q: the snapshot is encrypted and eventStore.encryption is off", stream)
		}
		sealed := data[len(prefix):]
		if len(sealed) < a.NonceSize() {
			return apitype.Snapshot{}, fmt.Errorf("stream %q: sealed snapshot too short", stream)
		}
		if data, err = a.Open(nil, sealed[:a.NonceSize()], sealed[a.NonceSize():], []byte("snapshot\x00"+stream)); err != nil {
			return apitype.Snapshot{}, fmt.Errorf("stream %q: cannot decrypt the snapshot (was the key changed?)", stream)
		}
	}
	var snap apitype.Snapshot
	if err := json.Unmarshal(data, &snap); err != nil {
		return apitype.Snapshot{}, fmt.Errorf("stream %q: snapshot: %w", stream, err)
	}
	return snap, nil
}
