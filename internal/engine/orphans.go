package engine

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/nubo-dev/nubo/internal/procgroup"
)

// Where no cgroup can be made, nubo is a child subreaper instead
// (procgroup.Orphans): a process that leaves a replica's process group and
// loses its parent (setsid and a double fork) is reparented to nubo, which
// kills it when the replicas have stopped. Every second nubo reaps the
// adopted processes that exited and tells its reaper their process groups,
// so that kill -9 of nubo kills them too, unless they were adopted in the
// last second.

// orphanScan is how often adopted processes are looked for.
const orphanScan = time.Second

// orphans is the engine's subreaper loop.
type orphans struct {
	o      *procgroup.Orphans
	reaper *reaper
	notify func(string) // the engine's output
	cancel context.CancelFunc
	done   chan struct{}
}

// startOrphans makes nubo a child subreaper and starts the scan; nil when
// the system refuses.
func startOrphans(log *slog.Logger, rp *reaper, notify func(string)) *orphans {
	o, err := procgroup.Adopt()
	if err != nil {
		log.Debug("no cgroups and no child subreaper: what leaves a replica's process group outlives it", "err", err)
		return nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	op := &orphans{o: o, reaper: rp, notify: notify, cancel: cancel, done: make(chan struct{})}
	go op.loop(ctx)
	return op
}

// skip tells the reaper, which nubo starts in a session of its own, from
// an adopted process.
func (op *orphans) skip(pid int) bool {
	return op.reaper != nil && op.reaper.cmd.Process != nil && op.reaper.cmd.Process.Pid == pid
}

func (op *orphans) loop(ctx context.Context) {
	defer close(op.done)
	t := time.NewTicker(orphanScan)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		added, gone := op.o.Scan(op.skip)
		for _, g := range added {
			op.reaper.track(g)
			op.notify(fmt.Sprintf("adopted process group %d: it left a replica's process group and is killed when the system stops", g))
		}
		for _, g := range gone {
			op.reaper.untrack(g)
		}
	}
}

// kill ends the scan and kills every adopted process; nil-safe.
func (op *orphans) kill() error {
	if op == nil {
		return nil
	}
	op.cancel()
	<-op.done
	return op.o.Kill(op.skip)
}
