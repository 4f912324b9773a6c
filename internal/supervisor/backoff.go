package supervisor

import "time"

// crashBackoff is one replica's CrashLoopBackOff schedule. It is owned by the
// replica's run goroutine and needs no lock.
type crashBackoff struct {
	cfg  Backoff
	next time.Duration // zero before the first crash or after a reset
}

// delay returns how long to wait before restarting a replica whose process
// ran for ranFor, and advances the schedule. A process that ran for at least
// cfg.Reset had been healthy long enough that its crash history is
// forgotten, as the kubelet does after ten minutes.
func (b *crashBackoff) delay(ranFor time.Duration) time.Duration {
	if b.next == 0 || ranFor >= b.cfg.Reset {
		b.next = b.cfg.Base
	}
	d := b.next
	b.next = min(2*b.next, b.cfg.Max)
	return d
}
