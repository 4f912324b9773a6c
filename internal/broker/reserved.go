package broker

import (
	"context"
	"strings"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// The server checks a client's permissions on what the client publishes,
// not on what a stream republishes (JetStream's RePublish): a process could
// create a stream of its own that republishes into Config.Reserved. The
// broker watches streams being created and updated, and on the embedded
// server at start, and strips such a republish.

// guardReserved starts the watch on nc; it lasts as long as nc.
func (b *Broker) guardReserved(ctx context.Context, nc *nats.Conn, js jetstream.JetStream) error {
	if len(b.cfg.Reserved) == 0 {
		return nil
	}
	check := func(m *nats.Msg) {
		name := m.Subject[strings.LastIndexByte(m.Subject, '.')+1:]
		// Not in the callback: the update below makes another advisory.
		go b.stripRepublish(js, name)
	}
	for _, pre := range []string{server.JSAdvisoryStreamCreatedPre, server.JSAdvisoryStreamUpdatedPre} {
		if _, err := nc.Subscribe(pre+".*", check); err != nil {
			return err
		}
	}
	names := js.StreamNames(ctx)
	for name := range names.Name() {
		b.stripRepublish(js, name)
	}
	return names.Err()
}

// stripRepublish removes stream name's republish if it may publish on a
// reserved subject.
func (b *Broker) stripRepublish(js jetstream.JetStream, name string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, name)
	if err != nil {
		return // gone already
	}
	cfg := s.CachedInfo().Config
	if cfg.RePublish == nil || !b.reserves(cfg.RePublish.Destination) {
		return
	}
	dest := cfg.RePublish.Destination
	cfg.RePublish = nil
	if _, err := js.UpdateStream(ctx, cfg); err != nil {
		b.log.Error("a stream republishes on subjects reserved to nubo, and its republish could not be removed", "stream", name, "destination", dest, "err", err)
		return
	}
	b.log.Error("a stream republished on subjects reserved to nubo: its republish was removed", "stream", name, "destination", dest)
}

// reserves reports whether a republish destination, a subject template
// whose {{...}} functions may give any token, can be a reserved subject.
func (b *Broker) reserves(dest string) bool {
	toks := strings.Split(dest, ".")
	for i, t := range toks {
		if strings.Contains(t, "{{") {
			toks[i] = "*"
		}
	}
	dest = strings.Join(toks, ".")
	for _, r := range b.cfg.Reserved {
		if server.SubjectsCollide(dest, r) {
			return true
		}
	}
	return false
}
