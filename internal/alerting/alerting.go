// Package alerting is nubo's Alertmanager. After each rule evaluation the
// evaluator (internal/metrics) reports every active alert here; this package
// groups them by alert name, notifies channels (Alertmanager's webhook
// payload version 4, Slack incoming webhooks, email over SMTP, nubo's log),
// sends resolved notifications, retries failed deliveries with backoff until
// the group interval ends and then sends the group's current state (so a
// receiver that comes up late gets the firing and the resolved alerts, as
// from Alertmanager), runs escalation policies that an acknowledgement
// stops, and mutes what silences match. The admin API for all of it is
// Handler.
//
// It is written here rather than embedded because Alertmanager is a server
// with no library entry point (cluster gossip, its own configuration and
// API), and escalation policies with acknowledgements are not one of its
// features. The wire formats are Alertmanager's and Slack's own, so
// receivers built for them work unchanged.
//
// This package deliberately imports nothing of Prometheus but its label
// matchers and fingerprints, so that the command line can use its types
// without linking the TSDB or PromQL.
//
// # Incidents
//
// The alerts of one alert name form a group. The group's incident opens when
// its first alert fires (pending alerts notify nobody) and closes when none
// is firing any more. When it opens, the alert's channels are notified at
// once and its escalation policy starts. While it is open, a change of the
// firing set (an alert fires or resolves) is sent to every channel notified
// so far. When it closes, those channels get a resolved notification. A
// silenced alert counts as not firing, but it leaves without a resolved
// notification, since nothing was fixed.
//
// # Escalation
//
// Each step runs its delay after the previous one (the first, after the
// incident opened) and notifies its channels. After the last step a policy
// with repeat starts over, at most maxRepeat more times. An acknowledgement
// skips every later step whose condition is unacknowledged and ends the
// repeats; steps with condition always still run. Acknowledgements end with
// their incident.
package alerting

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/nubo-dev/nubo/internal/apitype"
)

// State is apitype.AlertState.
type State = apitype.AlertState

// Alert states. Rules report pending and firing alerts; resolved appears in
// notifications only.
const (
	StatePending  = apitype.AlertPending
	StateFiring   = apitype.AlertFiring
	StateResolved = apitype.AlertResolved
)

// AlertNameLabel is the label that holds an alert's name.
const AlertNameLabel = apitype.AlertNameLabel

// Alert is apitype.Alert: the wire type lives there.
type Alert = apitype.Alert

func fingerprint(l map[string]string) string { return apitype.LabelsFingerprint(l) }

// ErrNotFound is returned for an alert, silence or channel that does not
// exist; the admin API answers it with 404.
var ErrNotFound = errors.New("not found")

// ErrNotFiring is returned when acknowledging an alert that is only
// pending; the admin API answers it with 409.
var ErrNotFiring = errors.New("not firing")

// Notifier turns alert updates into notifications. Its methods are safe for
// concurrent use.
type Notifier struct {
	log  *slog.Logger
	kick chan struct{} // one slot: wakes the escalation loop

	mu         sync.Mutex // guards the fields below
	cfg        Config
	deliverers map[string]*deliverer
	groups     map[string]*group
	silences   map[string]*silence
	runCtx     context.Context // set by Start; deliverers run under it
	started    bool
	stopped    bool
	cancel     context.CancelFunc
	wg         sync.WaitGroup
}

// group is the alerts of one alert name.
type group struct {
	name   string
	alerts map[string]Alert // by fingerprint: every pending or firing alert
	firing map[string]Alert // by fingerprint: the firing alerts notified, silenced ones left out
	inc    *incident        // nil while nothing fires
}

// incident is one stretch of time during which a group fires.
type incident struct {
	opened   time.Time
	ack      *Ack
	notified []string // channels notified, in order
	esc      *escalation
}

// Ack is apitype.Ack: the wire type lives there.
type Ack = apitype.Ack

// New checks cfg and returns a Notifier; it starts nothing.
func New(cfg Config) (*Notifier, error) {
	cfg, err := withDefaults(cfg)
	if err != nil {
		return nil, err
	}
	n := &Notifier{
		log:      cfg.Logger.With("component", "alerting"),
		kick:     make(chan struct{}, 1),
		cfg:      cfg,
		groups:   map[string]*group{},
		silences: map[string]*silence{},
	}
	n.deliverers = n.newDeliverers(cfg, nil)
	return n, nil
}

// Start loads the saved silences and starts the deliveries and the
// escalation timer; it returns at once.
func (n *Notifier) Start(ctx context.Context) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	switch {
	case n.stopped:
		return errors.New("alerting: start: notifier stopped")
	case n.started:
		return errors.New("alerting: start: already started")
	}
	if err := n.loadSilences(); err != nil {
		return err
	}
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	n.runCtx, n.cancel, n.started = runCtx, cancel, true
	for _, d := range n.deliverers {
		n.startDeliverer(d)
	}
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		n.loop(runCtx)
	}()
	return nil
}

// Stop ends the escalation timer and the deliveries; notifications still
// queued or waiting for a retry are dropped (and logged). It is nil-safe and
// idempotent, and waits for the goroutines until ctx is done.
func (n *Notifier) Stop(ctx context.Context) error {
	if n == nil {
		return nil
	}
	n.mu.Lock()
	if n.stopped {
		n.mu.Unlock()
		return nil
	}
	n.stopped = true
	cancel := n.cancel
	n.mu.Unlock()
	if cancel != nil {
		cancel()
	}
	done := make(chan struct{})
	go func() {
		n.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("alerting: stop: %w", ctx.Err())
	}
}

// Reconfigure swaps routes, channels and escalation policies (on a reload of
// the spec). Open incidents, acknowledgements and silences are kept; a
// channel whose settings changed loses the deliveries it had queued. On an
// error the old configuration stays.
func (n *Notifier) Reconfigure(cfg Config) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	// The logger, log output, client and state directory are the engine's,
	// not the spec's: a reload keeps them.
	cfg.Logger, cfg.LogLine, cfg.Client, cfg.Dir = n.cfg.Logger, n.cfg.LogLine, n.cfg.Client, n.cfg.Dir
	if cfg.Hostname == "" {
		cfg.Hostname = n.cfg.Hostname
	}
	if cfg.Retry == (Backoff{}) {
		cfg.Retry = n.cfg.Retry
	}
	if cfg.GroupInterval <= 0 {
		cfg.GroupInterval = n.cfg.GroupInterval
	}
	cfg, err := withDefaults(cfg)
	if err != nil {
		return err
	}
	old := n.deliverers
	n.deliverers = n.newDeliverers(cfg, old)
	for name, d := range old {
		if n.deliverers[name] != d {
			d.close()
		}
	}
	n.cfg = cfg
	if n.started {
		for _, d := range n.deliverers {
			if !d.running {
				n.startDeliverer(d)
			}
		}
	}
	n.kickLocked()
	return nil
}

// Update takes the alerts after an evaluation at ts: every pending and
// firing alert of every rule. An alert missing from alerts has resolved.
func (n *Notifier) Update(ts time.Time, alerts []Alert) {
	n.mu.Lock()
	defer n.mu.Unlock()
	byName := map[string]map[string]Alert{}
	for _, a := range alerts {
		name := a.Name()
		if byName[name] == nil {
			byName[name] = map[string]Alert{}
		}
		byName[name][a.Fingerprint()] = a
	}
	for name := range byName {
		if n.groups[name] == nil {
			n.groups[name] = &group{name: name}
		}
	}
	for name, g := range n.groups {
		g.alerts = byName[name]
		n.reconcile(g, ts)
		if len(g.alerts) == 0 && g.inc == nil {
			delete(n.groups, name)
		}
	}
	n.runDue(ts)
	n.kickLocked()
}

// reconcile compares a group's firing alerts with those notified and sends
// what changed. Lock held.
func (n *Notifier) reconcile(g *group, now time.Time) {
	firing := map[string]Alert{}
	for fp, a := range g.alerts {
		if a.State == StateFiring && n.silencedBy(a.Labels, now) == nil {
			firing[fp] = a
		}
	}
	changed := false
	var resolved []NotifiedAlert
	for _, fp := range sortedKeys(g.firing) {
		if _, still := firing[fp]; still {
			continue
		}
		changed = true
		if cur, ok := g.alerts[fp]; ok && cur.State == StateFiring {
			continue // muted by a silence: nothing was fixed
		}
		resolved = append(resolved, notifiedAlert(g.firing[fp], StateResolved, now))
	}
	for fp := range firing {
		if _, was := g.firing[fp]; !was {
			changed = true
		}
	}
	wasFiring := g.inc != nil
	g.firing = firing
	switch {
	case !wasFiring && len(firing) > 0:
		n.open(g, now)
	case wasFiring && len(firing) == 0:
		if len(resolved) > 0 {
			n.notify(g, g.inc.notified, StateResolved, resolved, "")
		}
		n.log.Info("incident closed", "alert", g.name, "resolved", len(resolved))
		if routeEmpty(n.route(g.name)) && len(resolved) > 0 {
			n.cfg.LogLine(fmt.Sprintf("alert %s resolved", g.name))
		}
		g.inc = nil
	case wasFiring && changed:
		n.notify(g, g.inc.notified, StateFiring, append(g.firingAlerts(), resolved...), "")
	}
}

// open starts a group's incident: its channels now, its escalation policy
// from now. Lock held.
func (n *Notifier) open(g *group, now time.Time) {
	// The incident opened when its first alert fired, which a rule
	// restored after a restart may put before now.
	opened := now
	for _, a := range g.firing {
		if !a.FiredAt.IsZero() && a.FiredAt.Before(opened) {
			opened = a.FiredAt
		}
	}
	g.inc = &incident{opened: opened}
	r := n.route(g.name)
	if routeEmpty(r) {
		n.cfg.LogLine(fmt.Sprintf("alert %s firing (%s); no channel or escalation routes it", g.name, countAlerts(len(g.firing))))
		return
	}
	n.notify(g, r.Channels, StateFiring, g.firingAlerts(), "")
	g.inc.notified = appendNew(g.inc.notified, r.Channels...)
	if p := n.cfg.Escalation[r.Escalation]; p != nil {
		g.inc.esc = &escalation{policy: r.Escalation, next: now.Add(p.Steps[0].Delay.Duration)}
	}
}

func (n *Notifier) route(alert string) Route { return n.cfg.Routes[alert] }

// firingAlerts are a group's firing alerts as a notification lists them,
// oldest first.
func (g *group) firingAlerts() []NotifiedAlert {
	out := make([]NotifiedAlert, 0, len(g.firing))
	for _, a := range g.firing {
		out = append(out, notifiedAlert(a, StateFiring, time.Time{}))
	}
	sortNotified(out)
	return out
}

// loop runs escalation steps and expires silences when they are due. Each
// pass computes the next time anything is due; Update, Ack, silences and
// Reconfigure wake it early.
func (n *Notifier) loop(ctx context.Context) {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		n.mu.Lock()
		now := time.Now()
		n.expireSilences(now)
		next := n.runDue(now)
		n.mu.Unlock()
		timer.Reset(time.Hour)
		if !next.IsZero() {
			timer.Reset(max(time.Until(next), 0))
		}
		select {
		case <-ctx.Done():
			return
		case <-n.kick:
		case <-timer.C:
		}
	}
}

// kickLocked wakes the loop without blocking.
func (n *Notifier) kickLocked() {
	select {
	case n.kick <- struct{}{}:
	default:
	}
}

// Ack acknowledges the firing alert name: its escalation skips its
// unacknowledged steps and ends its repeats.
func (n *Notifier) Ack(name, by string, now time.Time) (AlertStatus, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	g := n.groups[name]
	if g == nil || g.inc == nil {
		if g != nil && len(g.alerts) > 0 {
			return AlertStatus{}, fmt.Errorf("alert %q is pending, nothing to acknowledge until it fires: %w", name, ErrNotFiring)
		}
		return AlertStatus{}, fmt.Errorf("no firing alert %q%s: %w", name, n.firingNames(), ErrNotFound)
	}
	if g.inc.ack == nil {
		g.inc.ack = &Ack{By: by, At: now}
		n.log.Info("alert acknowledged", "alert", name, "by", by)
		if e := g.inc.esc; e != nil {
			e.settle(n.cfg.Escalation[e.policy], true)
		}
	}
	n.kickLocked()
	return n.status(g, now), nil
}

// firingNames is " (firing: a, b)" or " (nothing fires)", for errors.
func (n *Notifier) firingNames() string {
	var names []string
	for name, g := range n.groups {
		if g.inc != nil {
			names = append(names, name)
		}
	}
	if len(names) == 0 {
		return " (nothing fires)"
	}
	sort.Strings(names)
	return " (firing: " + strings.Join(names, ", ") + ")"
}

func countAlerts(n int) string {
	if n == 1 {
		return "1 alert"
	}
	return fmt.Sprintf("%d alerts", n)
}

func appendNew(list []string, items ...string) []string {
	for _, it := range items {
		if !slices.Contains(list, it) {
			list = append(list, it)
		}
	}
	return list
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
