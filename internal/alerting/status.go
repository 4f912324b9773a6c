package alerting

import (
	"sort"
	"time"

	"github.com/nubo-dev/nubo/internal/apitype"
)

// Status is apitype.Alerts: the wire type lives there.
type Status = apitype.Alerts

// AlertStatus is apitype.AlertStatus: the wire type lives there.
type AlertStatus = apitype.AlertStatus

// Instance is apitype.AlertInstance: the wire type lives there.
type Instance = apitype.AlertInstance

// Status returns the alerts, silences and channels as of now.
func (n *Notifier) Status(now time.Time) Status {
	n.mu.Lock()
	defer n.mu.Unlock()
	st := Status{Alerts: []AlertStatus{}, Silences: n.silenceViews(now), Channels: []ChannelStatus{}}
	for _, name := range sortedKeys(n.groups) {
		st.Alerts = append(st.Alerts, n.status(n.groups[name], now))
	}
	for _, name := range sortedKeys(n.deliverers) {
		st.Channels = append(st.Channels, n.deliverers[name].status())
	}
	return st
}

// Alerts returns the alert groups as of now, by name.
func (n *Notifier) Alerts(now time.Time) []AlertStatus {
	return n.Status(now).Alerts
}

// status describes one group. Lock held.
func (n *Notifier) status(g *group, now time.Time) AlertStatus {
	s := AlertStatus{Name: g.name, State: StatePending, Route: n.route(g.name), Instances: []Instance{}}
	severities := map[string]bool{}
	firing, silenced := 0, 0
	for fp, a := range g.alerts {
		in := Instance{Alert: a, Fingerprint: fp}
		if sil := n.silencedBy(a.Labels, now); sil != nil {
			in.SilencedBy = sil.ID
		}
		if a.State == StateFiring {
			s.State = StateFiring
			firing++
			if in.SilencedBy != "" {
				silenced++
			}
		}
		if s.ActiveAt.IsZero() || a.ActiveAt.Before(s.ActiveAt) {
			s.ActiveAt = a.ActiveAt
		}
		severities[a.Labels["severity"]] = true
		s.Instances = append(s.Instances, in)
	}
	sort.Slice(s.Instances, func(i, j int) bool {
		a, b := s.Instances[i], s.Instances[j]
		if !a.ActiveAt.Equal(b.ActiveAt) {
			return a.ActiveAt.Before(b.ActiveAt)
		}
		return labelText(a.Labels) < labelText(b.Labels)
	})
	if len(severities) == 1 {
		for sev := range severities {
			s.Severity = sev
		}
	}
	s.Silenced = firing > 0 && silenced == firing
	if inc := g.inc; inc != nil {
		s.State = StateFiring
		s.FiredAt = inc.opened
		s.Acknowledged = inc.ack
		s.Notified = append([]string(nil), inc.notified...)
		if inc.esc != nil {
			s.Escalation = inc.esc.status(n.cfg.Escalation[inc.esc.policy])
		}
	}
	return s
}
