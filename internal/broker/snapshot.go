package broker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/nubo-dev/nubo/internal/backup"
)

// RestoreDir is the folder of the state directory where a restored backup
// leaves streams' snapshots (NAME.json, NAME.snap) for the embedded server
// to load when it next starts.
const RestoreDir = "broker-restore"

// Snapshot is one stream's snapshot: its configuration and state, and the
// server's archive of its files.
type Snapshot struct {
	Config server.StreamConfig `json:"config"`
	State  server.StreamState  `json:"state"`
}

// StreamNames lists the server's streams (KV buckets and the event store's
// are streams too), sorted.
func (b *Broker) StreamNames(ctx context.Context) ([]string, error) {
	js := b.JetStream()
	if js == nil {
		return nil, errors.New("broker: not started")
	}
	l := js.StreamNames(ctx)
	var out []string
	for n := range l.Name() {
		out = append(out, n)
	}
	if err := l.Err(); err != nil {
		return nil, fmt.Errorf("broker: list streams: %w", err)
	}
	sort.Strings(out)
	return out, nil
}

// SnapshotStream writes a consistent snapshot of stream name (its
// messages and consumers, as of the moment the server begins it) to w,
// through JetStream's own snapshot API, and returns its configuration and
// state.
func (b *Broker) SnapshotStream(ctx context.Context, name string, w io.Writer) (Snapshot, error) {
	var snap Snapshot
	nc := b.Conn()
	if nc == nil {
		return snap, errors.New("broker: not started")
	}
	inbox := nc.NewInbox()
	sub, err := nc.SubscribeSync(inbox)
	if err != nil {
		return snap, fmt.Errorf("broker: snapshot %s: %w", name, err)
	}
	defer sub.Unsubscribe()
	// The chunks wait in the subscription until read: no limit, the
	// server sends at most its window before it waits for acks.
	_ = sub.SetPendingLimits(-1, -1)
	req, _ := json.Marshal(server.JSApiStreamSnapshotRequest{DeliverSubject: inbox})
	msg, err := nc.RequestWithContext(ctx, server.JSApiPrefix+".STREAM.SNAPSHOT."+name, req)
	if err != nil {
		return snap, fmt.Errorf("broker: snapshot %s: %w", name, err)
	}
	var resp server.JSApiStreamSnapshotResponse
	if err := json.Unmarshal(msg.Data, &resp); err != nil {
		return snap, fmt.Errorf("broker: snapshot %s: %w", name, err)
	}
	if resp.Error != nil {
		return snap, fmt.Errorf("broker: snapshot %s: %s", name, resp.Error.Description)
	}
	if resp.Config == nil || resp.State == nil {
		return snap, fmt.Errorf("broker: snapshot %s: the server sent no configuration", name)
	}
	snap.Config, snap.State = *resp.Config, *resp.State
	for {
		m, err := sub.NextMsgWithContext(ctx)
		if err != nil {
			return snap, fmt.Errorf("broker: snapshot %s: %w", name, err)
		}
		if len(m.Data) == 0 {
			// The end: status 204, or the server's error.
			if st := m.Header.Get("Status"); st != "" && st != "204" {
				return snap, fmt.Errorf("broker: snapshot %s: the server says %s %s", name, st, m.Header.Get("Description"))
			}
			return snap, nil
		}
		if _, err := w.Write(m.Data); err != nil {
			return snap, fmt.Errorf("broker: snapshot %s: %w", name, err)
		}
		if m.Reply != "" {
			if err := m.Respond(nil); err != nil {
				return snap, fmt.Errorf("broker: snapshot %s: ack: %w", name, err)
			}
		}
	}
}

// restoreChunk is the size of the chunks a restore sends.
const restoreChunk = 128 << 10

// RestoreStream creates stream snap.Config.Name from a snapshot read from
// r, through JetStream's restore API. The stream must not exist.
func (b *Broker) RestoreStream(ctx context.Context, snap Snapshot, r io.Reader) error {
	nc := b.Conn()
	if nc == nil {
		return errors.New("broker: not started")
	}
	return restoreStream(ctx, nc, snap, r)
}

func restoreStream(ctx context.Context, nc *nats.Conn, snap Snapshot, r io.Reader) error {
	name := snap.Config.Name
	req, _ := json.Marshal(server.JSApiStreamRestoreRequest{Config: snap.Config, State: snap.State})
	msg, err := nc.RequestWithContext(ctx, server.JSApiPrefix+".STREAM.RESTORE."+name, req)
	if err != nil {
		return fmt.Errorf("broker: restore %s: %w", name, err)
	}
	var resp server.JSApiStreamRestoreResponse
	if err := json.Unmarshal(msg.Data, &resp); err != nil {
		return fmt.Errorf("broker: restore %s: %w", name, err)
	}
	if resp.Error != nil {
		return fmt.Errorf("broker: restore %s: %s", name, resp.Error.Description)
	}
	buf := make([]byte, restoreChunk)
	for {
		n, rerr := io.ReadFull(r, buf)
		if n > 0 {
			ack, err := nc.RequestWithContext(ctx, resp.DeliverSubject, buf[:n])
			if err != nil {
				return fmt.Errorf("broker: restore %s: %w", name, err)
			}
			if err := createError(ack.Data); err != nil {
				return fmt.Errorf("broker: restore %s: %w", name, err)
			}
		}
		if errors.Is(rerr, io.EOF) || errors.Is(rerr, io.ErrUnexpectedEOF) {
			break
		}
		if rerr != nil {
			return fmt.Errorf("broker: restore %s: %w", name, rerr)
		}
	}
	done, err := nc.RequestWithContext(ctx, resp.DeliverSubject, nil)
	if err != nil {
		return fmt.Errorf("broker: restore %s: %w", name, err)
	}
	if err := createError(done.Data); err != nil {
		return fmt.Errorf("broker: restore %s: %w", name, err)
	}
	return nil
}

// createError is the error in a restore's answer, if any (a chunk's ack is
// empty).
func createError(data []byte) error {
	if len(data) == 0 {
		return nil
	}
	var resp server.JSApiStreamCreateResponse
	if err := json.Unmarshal(data, &resp); err != nil {
		return err
	}
	if resp.Error != nil {
		return errors.New(resp.Error.Description)
	}
	return nil
}

// restorePending loads the snapshots a restore left in RestoreDir into the
// embedded server, each once: a stream that loads is removed from the
// folder, one that fails stops the start (its data is still in the folder).
// Start calls it under b.mu, with b.nc and b.js set.
func (b *Broker) restorePending(ctx context.Context) error {
	dir := filepath.Join(b.cfg.StateDir, RestoreDir)
	ents, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("broker: %w", err)
	}
	for _, e := range ents {
		base, ok := strings.CutSuffix(e.Name(), ".json")
		if !ok {
			continue
		}
		if err := b.restoreFile(ctx, filepath.Join(dir, base)); err != nil {
			return err
		}
		b.log.Info("stream restored from a backup", "stream", base)
	}
	return os.Remove(dir)
}

func (b *Broker) restoreFile(ctx context.Context, base string) error {
	data, err := os.ReadFile(base + ".json")
	if err != nil {
		return fmt.Errorf("broker: %w", err)
	}
	var snap Snapshot
	if err := json.Unmarshal(data, &snap); err != nil {
		return fmt.Errorf("broker: %s: %w", base+".json", err)
	}
	f, err := os.Open(base + ".snap")
	if err != nil {
		return fmt.Errorf("broker: %w", err)
	}
	defer f.Close()
	if _, err := b.js.Stream(ctx, snap.Config.Name); err == nil {
		return fmt.Errorf("broker: restore %s: the stream exists already (a restored backup waits in %s)", snap.Config.Name, filepath.Dir(base))
	}
	if err := restoreStream(ctx, b.nc, snap, f); err != nil {
		return err
	}
	return errors.Join(os.Remove(base+".json"), os.Remove(base+".snap"))
}

// BackupName implements backup.Source.
func (b *Broker) BackupName() string { return "broker" }

// BackupPart implements backup.Source: every stream's snapshot (KV
// buckets and the event store are streams), each as of the moment the
// server begins it, into RestoreDir, which the embedded server loads when
// it next starts. Restoring replaces the server's own files.
func (b *Broker) BackupPart(ctx context.Context, w *backup.Writer) error {
	names, err := b.StreamNames(ctx)
	if err != nil {
		return err
	}
	w.Replaces("broker", RestoreDir)
	for _, name := range names {
		var snap Snapshot
		err := w.Stream(path.Join(RestoreDir, name+".snap"), func(out io.Writer) (err error) {
			snap, err = b.SnapshotStream(ctx, name, out)
			return err
		})
		if err != nil {
			return err
		}
		meta, err := json.Marshal(snap)
		if err != nil {
			return err
		}
		if err := w.Stream(path.Join(RestoreDir, name+".json"), func(out io.Writer) error {
			_, err := out.Write(meta)
			return err
		}); err != nil {
			return err
		}
	}
	return nil
}
