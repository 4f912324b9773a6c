package alerting

import (
	"context"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/nubo-dev/nubo/internal/apitype"
	"github.com/nubo-dev/nubo/internal/spec"
)

// Notification is what a channel is sent: the alerts of one group.
type Notification struct {
	// Receiver names the channel.
	Receiver string
	// Status is firing while any alert of the group fires, else resolved.
	Status State
	// Group is the alert name the alerts share.
	Group string
	// Alerts are the firing alerts, then those resolved since the last
	// notification.
	Alerts []NotifiedAlert
	// Escalation says which escalation step sends it, "" for none.
	Escalation string
	// ExternalURL is the console's URL.
	ExternalURL string
}

// NotifiedAlert is one alert in a notification, with Alertmanager's fields.
type NotifiedAlert struct {
	Status       State
	Labels       map[string]string
	Annotations  map[string]string
	StartsAt     time.Time
	EndsAt       time.Time // zero while firing
	GeneratorURL string
	Fingerprint  string
	Value        string
}

func notifiedAlert(a Alert, status State, endsAt time.Time) NotifiedAlert {
	starts := a.FiredAt
	if starts.IsZero() {
		starts = a.ActiveAt
	}
	return NotifiedAlert{
		Status: status, Labels: a.Labels, Annotations: a.Annotations, StartsAt: starts, EndsAt: endsAt,
		GeneratorURL: a.GeneratorURL, Fingerprint: a.Fingerprint(), Value: a.Value,
	}
}

func sortNotified(as []NotifiedAlert) {
	sort.Slice(as, func(i, j int) bool {
		if !as[i].StartsAt.Equal(as[j].StartsAt) {
			return as[i].StartsAt.Before(as[j].StartsAt)
		}
		return labelText(as[i].Labels) < labelText(as[j].Labels)
	})
}

// commonLabels are the labels every alert has with the same value.
func commonLabels(alerts []NotifiedAlert, of func(NotifiedAlert) map[string]string) map[string]string {
	out := map[string]string{}
	if len(alerts) == 0 {
		return out
	}
	maps.Copy(out, of(alerts[0]))
	for _, a := range alerts[1:] {
		l := of(a)
		for k, v := range out {
			if l[k] != v {
				delete(out, k)
			}
		}
	}
	return out
}

// notify queues a notification of g's alerts for each channel. Lock held.
func (n *Notifier) notify(g *group, channels []string, status State, alerts []NotifiedAlert, escalation string) {
	if len(alerts) == 0 {
		return
	}
	for _, ch := range channels {
		d := n.deliverers[ch]
		if d == nil {
			n.log.Error("notification dropped: no such channel", "alert", g.name, "channel", ch)
			continue
		}
		d.enqueue(&Notification{
			Receiver: ch, Status: status, Group: g.name, Alerts: alerts,
			Escalation: escalation, ExternalURL: n.cfg.ExternalURL,
		})
	}
}

// maxQueue bounds the notifications waiting for one channel; past it the
// oldest is dropped, since a newer one says more about the present. As a
// channel queues at most one notification per group, it is reached only
// with that many groups notifying at once.
const maxQueue = 1024

// deliverer sends one channel's notifications, retrying a failed one with
// backoff until its group interval ends and then sending its group's
// current state instead, until one is delivered: a receiver that comes up
// late still gets the firing alerts and the resolved ones, as Alertmanager
// behaves.
type deliverer struct {
	name          string
	typ           string
	conf          *spec.Channel
	send          func(ctx context.Context, n *Notification) error
	retry         Backoff
	groupInterval time.Duration
	n             *Notifier
	// running is set once the goroutine started; guarded by the
	// Notifier's lock.
	running bool

	mu      sync.Mutex      // guards the fields below
	queue   []*Notification // at most one per group, oldest first
	closed  bool
	cancel  context.CancelFunc
	wake    chan struct{}
	sent    int
	failed  int
	lastErr string
	lastAt  time.Time
}

// newDeliverers builds the deliverers of cfg's channels, reusing those of
// old whose channel is unchanged.
func (n *Notifier) newDeliverers(cfg Config, old map[string]*deliverer) map[string]*deliverer {
	out := map[string]*deliverer{}
	for name, c := range cfg.Channels {
		if d := old[name]; d != nil && reflect.DeepEqual(d.conf, c) && d.retry == cfg.Retry && d.groupInterval == cfg.GroupInterval {
			out[name] = d
			continue
		}
		out[name] = &deliverer{
			name: name, typ: c.Type, conf: c, retry: cfg.Retry, groupInterval: cfg.GroupInterval, n: n,
			send: senderFor(name, c, cfg), wake: make(chan struct{}, 1),
		}
	}
	return out
}

// startDeliverer runs d under the Notifier's context. Lock held.
func (n *Notifier) startDeliverer(d *deliverer) {
	ctx, cancel := context.WithCancel(n.runCtx)
	d.mu.Lock()
	d.cancel = cancel
	d.mu.Unlock()
	d.running = true
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		d.run(ctx)
	}()
}

// enqueue queues nt. A notification of the same group still waiting is
// replaced by nt, which then also carries the alerts the older one
// resolved: the receiver gets the group's latest state, and no resolution
// is lost.
func (d *deliverer) enqueue(nt *Notification) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return
	}
	defer d.wakeLocked()
	for i, q := range d.queue {
		if q.Group == nt.Group {
			d.queue[i] = supersede(q, nt)
			return
		}
	}
	if len(d.queue) >= maxQueue {
		d.n.log.Warn("notification dropped: queue full", "channel", d.name, "alert", d.queue[0].Group)
		d.queue = d.queue[1:]
	}
	d.queue = append(d.queue, nt)
}

func (d *deliverer) wakeLocked() {
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// supersede returns nt with the resolved alerts of old that nt does not
// mention, since old will never be sent. d.mu held.
func supersede(old, nt *Notification) *Notification {
	in := make(map[string]bool, len(nt.Alerts))
	for _, a := range nt.Alerts {
		in[a.Fingerprint] = true
	}
	out := *nt
	out.Alerts = slices.Clone(nt.Alerts)
	for _, a := range old.Alerts {
		if a.Status == StateResolved && !in[a.Fingerprint] {
			out.Alerts = append(out.Alerts, a)
		}
	}
	if out.Escalation == "" {
		out.Escalation = old.Escalation
	}
	return &out
}

// close drops d's queue and stops its goroutine.
func (d *deliverer) close() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.closed = true
	if len(d.queue) > 0 {
		d.n.log.Warn("notifications dropped: channel reconfigured", "channel", d.name, "count", len(d.queue))
	}
	d.queue = nil
	if d.cancel != nil {
		d.cancel()
	}
}

func (d *deliverer) run(ctx context.Context) {
	for {
		d.mu.Lock()
		var nt *Notification
		if len(d.queue) > 0 {
			nt, d.queue = d.queue[0], d.queue[1:]
		}
		d.mu.Unlock()
		if nt == nil {
			select {
			case <-ctx.Done():
				return
			case <-d.wake:
				continue
			}
		}
		delivered := d.deliver(ctx, nt)
		if ctx.Err() != nil {
			d.dropQueued()
			return
		}
		if !delivered {
			// The group interval is over: send the group's state as it is
			// now, after the other groups' notifications waiting.
			if cur := d.n.currentState(d.name, nt); cur != nil {
				d.enqueue(cur)
			}
		}
	}
}

func (d *deliverer) dropQueued() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.queue) > 0 {
		d.n.log.Warn("notifications dropped on stop", "channel", d.name, "count", len(d.queue))
	}
	d.queue = nil
}

// attemptTimeout bounds one delivery attempt.
const attemptTimeout = 30 * time.Second

// deliver sends nt, retrying with exponential backoff until it succeeds,
// ctx ends or the group interval has passed; it reports whether nt was
// delivered.
func (d *deliverer) deliver(ctx context.Context, nt *Notification) bool {
	deadline := time.Now().Add(d.groupInterval)
	wait := d.retry.Initial
	for attempt := 1; ; attempt++ {
		actx, cancel := context.WithTimeout(ctx, min(attemptTimeout, time.Until(deadline)))
		err := d.send(actx, nt)
		cancel()
		d.record(err)
		if err == nil {
			d.n.log.Debug("notification sent", "channel", d.name, "alert", nt.Group, "status", nt.Status, "attempt", attempt)
			return true
		}
		if ctx.Err() != nil {
			d.n.log.Warn("notification dropped on stop", "channel", d.name, "alert", nt.Group, "err", err)
			return false
		}
		d.n.log.Warn("notification failed; will retry", "channel", d.name, "alert", nt.Group, "attempt", attempt, "retry_in", wait, "err", err)
		t := time.NewTimer(min(wait, time.Until(deadline)))
		select {
		case <-ctx.Done():
			t.Stop()
			d.n.log.Warn("notification dropped on stop", "channel", d.name, "alert", nt.Group)
			return false
		case <-t.C:
		}
		if !time.Now().Before(deadline) {
			d.n.log.Error("notification failed for a group interval; sending the group's current state", "channel", d.name, "alert", nt.Group, "attempts", attempt, "err", err)
			return false
		}
		wait = min(2*wait, d.retry.Max)
	}
}

// currentState is what a channel should now be told of the group of a
// notification that could not be delivered: its firing alerts, if the
// channel was notified of its open incident, and the alerts failed
// resolved that do not fire again. A firing alert of failed that neither
// fires nor resolved was silenced, and is left out: nothing was fixed. Nil
// if nothing is left to say.
func (n *Notifier) currentState(channel string, failed *Notification) *Notification {
	n.mu.Lock()
	defer n.mu.Unlock()
	var alerts []NotifiedAlert
	if g := n.groups[failed.Group]; g != nil && g.inc != nil && slices.Contains(g.inc.notified, channel) {
		alerts = g.firingAlerts()
	}
	firing := len(alerts) > 0
	in := make(map[string]bool, len(alerts))
	for _, a := range alerts {
		in[a.Fingerprint] = true
	}
	for _, a := range failed.Alerts {
		if a.Status == StateResolved && !in[a.Fingerprint] {
			alerts = append(alerts, a)
		}
	}
	if len(alerts) == 0 {
		return nil
	}
	status := StateResolved
	if firing {
		status = StateFiring
	}
	return &Notification{
		Receiver: channel, Status: status, Group: failed.Group, Alerts: alerts,
		Escalation: failed.Escalation, ExternalURL: n.cfg.ExternalURL,
	}
}

func (d *deliverer) record(err error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err == nil {
		d.sent++
		return
	}
	d.failed++
	d.lastErr, d.lastAt = err.Error(), time.Now()
}

// ChannelStatus is apitype.ChannelStatus: the wire type lives there.
type ChannelStatus = apitype.ChannelStatus

func (d *deliverer) status() ChannelStatus {
	d.mu.Lock()
	defer d.mu.Unlock()
	return ChannelStatus{Name: d.name, Type: d.typ, Sent: d.sent, Failed: d.failed, Queued: len(d.queue), LastError: d.lastErr, LastErrorAt: d.lastAt}
}

// checkChannel checks what a channel needs to send anything.
func checkChannel(c *spec.Channel) error {
	switch c.Type {
	case "webhook", "slack":
		if c.URL == "" {
			return fmt.Errorf("a %s channel needs url", c.Type)
		}
	case "email":
		if len(c.To) == 0 || c.SMTP == nil || c.SMTP.Host == "" {
			return fmt.Errorf("an email channel needs to and smtp.host")
		}
	case "log":
	default:
		return fmt.Errorf("unknown type %q (webhook, slack, email or log)", c.Type)
	}
	return nil
}
